#!/bin/bash
# The shared harness's AI-path phases only (model_raw, then ai_varied against a server with the demo
# KB on PostgreSQL, production mode, rate limit off), in one run; optionally py-spy the server under
# the 'varied' load. Run from the project checkout, under the benchmark lock:
#   flock /tmp/bench.lock bash bench/ai_path/ai_run.sh [SECONDS] [PYSPY_OUT.txt]
# shellcheck disable=SC1091
T=${BENCH_DIR:-/work/shared/bench}
source "$T/lib.sh"
SEC=${1:-15}; PROF=${2:-}; S=perf-secret-0123456789abcdef
need_venv
pg_ok || fail "no PostgreSQL"
HP=$(free_port)
"$PWD/.venv/bin/uvicorn" --app-dir "$T" hello_app:app --host 127.0.0.1 --port "$HP" --no-access-log --log-level warning >"$BAR_TMP/hello.log" 2>&1 &
BAR_PIDS+=($!)
DSN2=$(fresh_pg_db perfai)
start_server ai AI_CS_RUNTIME_ENV=production AI_CS_WEBHOOK_SECRET=$S AI_CS_POSTGRES_ENABLED=true AI_CS_POSTGRES_DSN=$DSN2 \
  AI_CS_RATE_LIMIT_MESSAGES=0 AI_CS_LOG_LEVEL=warning AI_CS_DEMO_KB=true AI_CS_METRICS_TOKEN=$S$S ${PERF_SERVER_ENV:-}
SPID=${BAR_PIDS[-1]}
for _ in $(seq 1 180); do curl -s "$URL_ai/actuator/health" | grep -q '"knowledge":{"status":"UP"' && break; sleep 1; done
model=$("$PWD/.venv/bin/python" "$T/model_throughput.py" 600 2)
echo "{\"phase\":\"model_raw\",\"result\":$model}"
if [ -n "$PROF" ]; then
  # the hello phase runs first for SEC seconds: start sampling when the webhook phase starts
  ( sleep $((SEC + 2)); "$PWD/.venv/bin/py-spy" record -p "$SPID" -d $((SEC - 4)) -r 200 ${PYSPY_ARGS:-} -f raw -o "$PROF" >/dev/null 2>&1 ) &
  BAR_PIDS+=($!)
fi
if [ -n "${CPU_ACCOUNT:-}" ]; then
  python3 "$(dirname "$0")/cpu_account.py" "$SPID" $((SEC + 2)) $((SEC - 4)) >"$BAR_TMP/cpu.json" &
  BAR_PIDS+=($!)
fi
r=$(python3 "$T/perf_webhook.py" "$URL_ai/api/v1/customer-service/webhook" $S "http://127.0.0.1:$HP/hello" "$SEC" 16 varied)
echo "$r" | python3 -c "import json,sys; m=json.loads('''$model'''); d=json.load(sys.stdin); d['phase']='ai_varied'; d['ratio_to_model']=round(d['webhook']['rps']/m['single_qps'],3); print(json.dumps(d))"
[ -n "$PROF" ] && wait "${BAR_PIDS[-1]}"
[ -n "${CPU_ACCOUNT:-}" ] && { wait "${BAR_PIDS[-1]}"; echo "{\"phase\":\"cpu_during_ai_varied\",\"seconds\":$(cat "$BAR_TMP/cpu.json")}"; }
# how many of the processed messages ran the dialog engine's retrieval (an encode each)
curl -s -H "Authorization: Bearer $S$S" "$URL_ai/metrics" | grep -E '^cs_(dialog_latency_seconds_count|messages_processed_total|handoffs_total)' | sed 's/^/# /'
psql "$(pg_dsn)" -qc "drop database if exists ${DSN2##*/} with (force)" >/dev/null 2>&1 || true
