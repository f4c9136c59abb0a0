"""Summarise ab_run.sh output (stdin): per tree msg/s, ratio to model_raw, and CPU per message.

``ai`` counts the messages that ran the dialog engine (answer / clarify / handoff outcomes);
``worker_ms_per_ai_msg`` is the server's non-loop CPU (the encodes and rankings) per such message.
"""

import json
import re
import sys

rows: dict[str, dict[str, float]] = {}
window = 11.0 / 15.0  # cpu_account measures SEC - 4 of the SEC seconds (ab_run.sh 15)
for line in sys.stdin:
    if line.startswith("{"):
        d = json.loads(line)
        if d["phase"] == "model_raw":
            print("model_raw single_qps", d["result"]["single_qps"])
        elif d["phase"] == "ai_varied":
            rows[d["tree"]] = {"rps": d["webhook"]["rps"], "ratio_to_model": d["ratio_to_model"], "ai": 0.0}
        elif d["phase"] == "cpu":
            s = d["seconds"]
            rows[d["tree"]].update(
                workers_s=s["server_workers"], loop_s=s["server_loop"], other_s=s.get("other", 0)
            )
    elif m := re.match(r'# (\S+) .*outcome="(\w+)"\} ([\d.]+)', line):
        rows[m.group(1)][m.group(2)] = float(m.group(3))
        if m.group(2) in ("answer", "clarify", "handoff"):
            rows[m.group(1)]["ai"] += float(m.group(3))
for tree, r in rows.items():
    r["worker_ms_per_ai_msg"] = round(r["workers_s"] / (r["ai"] * window) * 1000, 1)
    print(tree, json.dumps(r))
