"""CPU seconds per process/thread group over a window: where the 2 cores went during a load phase.

Usage: cpu_account.py SERVER_PID DELAY SECONDS   (prints JSON: CPU seconds per group, cores used)
Groups: the server processes' event-loop threads (their main threads), their other threads (the
embedding and ranking workers), postgres, wrk, and everything else on the machine.
"""

import json
import os
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def snapshot(server: int) -> dict[str, float]:
    out: dict[str, float] = {}
    stats: dict[int, str] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stats[int(pid)] = f.read()
        except OSError:
            continue
    parent = {p: int(st[st.rindex(")") + 2 :].split()[1]) for p, st in stats.items()}
    tree = {server}  # the server and its worker processes (AI_CS_HTTP_WORKERS)
    for p in sorted(parent):
        q = p
        while q > 1 and q not in tree:
            q = parent.get(q, 0)
        if q in tree:
            tree.add(p)
    for ipid, stat in stats.items():
        pid = str(ipid)
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if ipid in tree:
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tids:
                try:
                    with open(f"/proc/{pid}/task/{tid}/stat") as f:
                        t = f.read()
                except OSError:
                    continue
                tf = t[t.rindex(")") + 2 :].split()
                key = "server_loop" if tid == pid else "server_workers"
                out[key] = out.get(key, 0.0) + (int(tf[11]) + int(tf[12])) / TICK
            continue
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        key = "postgres" if comm.startswith("postgres") else "wrk" if comm == "wrk" else "other"
        if key == "other":
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    name = f.read().replace(b"\0", b" ").decode(errors="replace")[:80] or comm
            except OSError:
                name = comm
            out["other:" + name] = out.get("other:" + name, 0.0) + cpu
        out[key] = out.get(key, 0.0) + cpu
    return out


def main() -> None:
    server, delay, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    time.sleep(delay)
    a, t0 = snapshot(server), time.monotonic()
    time.sleep(seconds)
    b, t1 = snapshot(server), time.monotonic()
    d = {k: round(b[k] - a.get(k, 0.0), 2) for k in b if b[k] - a.get(k, 0.0) > 0.05}
    others = sorted(((k, v) for k, v in d.items() if k.startswith("other:")), key=lambda kv: -kv[1])[:5]
    d = {k: v for k, v in d.items() if not k.startswith("other:")}
    d["top_other"] = dict(others)
    d["wall"] = round(t1 - t0, 2)
    print(json.dumps(d))


if __name__ == "__main__":
    main()
