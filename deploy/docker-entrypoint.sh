#!/bin/sh
# The container's entrypoint (also usable on a plain host).
#
#   (no arguments) | serve      validate config, connect, migrate (adopting a database of the original
#                               Go service), serve HTTP and the workers; SIGTERM drains (exec: PID 1 is
#                               the service itself, so signals reach it)
#   migrate [--dry-run|--sql]   and every other ai-customer-service command, e.g. --version, doctor
#   healthcheck                 exit 0 when the live probe answers 200 (the image's HEALTHCHECK)
#   anything else               run as given (e.g. sh)
set -eu

if [ "$#" -eq 0 ]; then
    set -- serve
fi

case "$1" in
    healthcheck)
        # the port of AI_CS_ADDR ("[host]:port", default :8080), always asked on the loopback
        port="${AI_CS_ADDR:-:8080}"
        port="${port##*:}"
        exec python -c 'import sys, urllib.request
try:
    with urllib.request.urlopen("http://127.0.0.1:%s/actuator/health/live" % sys.argv[1], timeout=3) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception as exc:
    print("live probe failed: %s" % exc, file=sys.stderr)
    sys.exit(1)' "$port"
        ;;
    serve | migrate | doctor | kb | eval | agents | outbox | --version | -V | --help)
        exec ai-customer-service "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
