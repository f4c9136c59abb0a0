#!/bin/bash
# A/B of the AI path in one run: model_raw once, then ai_varied (perf_webhook.py ... 16 varied, as the
# shared harness) against a server of each tree, in the order given, each on its own fresh database.
# Run from the project checkout, under the benchmark lock:
#   flock /tmp/bench.lock bash bench/ai_path/ab_run.sh SECONDS NAME=SRC_DIR [NAME=SRC_DIR ...]
# SRC_DIR is a tree's 'src' folder (e.g. `git archive main src | tar -x -C /tmp/base`); it is put first
# on PYTHONPATH, so the same venv serves each tree. Prints one JSON line per phase, plus the CPU
# seconds per group (server loop thread / server worker threads / postgres / wrk / others) over the
# middle of each phase, and how many messages ran the dialog engine.
# shellcheck disable=SC1091
T=${BENCH_DIR:-/work/shared/bench}
HERE="$(dirname "$(readlink -f "$0")")"
source "$T/lib.sh"
SEC=${1:-15}; shift; S=perf-secret-0123456789abcdef
need_venv
pg_ok || fail "no PostgreSQL"
HP=$(free_port)
"$PWD/.venv/bin/uvicorn" --app-dir "$T" hello_app:app --host 127.0.0.1 --port "$HP" --no-access-log --log-level warning >"$BAR_TMP/hello.log" 2>&1 &
BAR_PIDS+=($!)
model=$("$PWD/.venv/bin/python" "$T/model_throughput.py" 600 2)
echo "{\"phase\":\"model_raw\",\"result\":$model}"
for spec in "$@"; do
  name=${spec%%=*}; src=${spec#*=}
  DSN=$(fresh_pg_db "ab$name")
  start_server "$name" PYTHONPATH="$src" AI_CS_RUNTIME_ENV=production AI_CS_WEBHOOK_SECRET=$S AI_CS_POSTGRES_ENABLED=true \
    AI_CS_POSTGRES_DSN=$DSN AI_CS_RATE_LIMIT_MESSAGES=0 AI_CS_LOG_LEVEL=warning AI_CS_DEMO_KB=true \
    AI_CS_METRICS_TOKEN=$S$S ${PERF_SERVER_ENV:-}
  SPID=${BAR_PIDS[-1]}; eval "URL=\$URL_$name"
  for _ in $(seq 1 180); do curl -s "$URL/actuator/health" | grep -q '"knowledge":{"status":"UP"' && break; sleep 1; done
  python3 "$HERE/cpu_account.py" "$SPID" $((SEC + 3)) $((SEC - 4)) >"$BAR_TMP/cpu.json" &
  CP=$!
  r=$(python3 "${PERF_SCRIPT:-$T/perf_webhook.py}" "$URL/api/v1/customer-service/webhook" $S "http://127.0.0.1:$HP/hello" "$SEC" 16 varied)
  wait $CP
  echo "$r" | python3 -c "import json,sys; m=json.loads('''$model'''); d=json.load(sys.stdin); d['phase']='ai_varied'; d['tree']='$name'; d['ratio_to_model']=round(d['webhook']['rps']/m['single_qps'],3); d.pop('hello'); print(json.dumps(d))"
  echo "{\"phase\":\"cpu\",\"tree\":\"$name\",\"seconds\":$(cat "$BAR_TMP/cpu.json")}"
  curl -s -H "Authorization: Bearer $S$S" "$URL/metrics" | grep -E '^cs_messages_processed_total' | sed "s/^/# $name /"
  kill "$SPID"; sleep 1
  psql "$(pg_dsn)" -qc "drop database if exists ${DSN##*/} with (force)" >/dev/null 2>&1 || true
done
