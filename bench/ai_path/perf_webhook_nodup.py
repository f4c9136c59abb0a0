#!/usr/bin/env python3
"""The shared harness's perf_webhook.py, with each wrk thread starting at its own place in the list.

perf_webhook.py gives both wrk threads the same request list from the top, so in 'varied' mode about
half of the requests are the other thread's message again (same message id: a duplicate, often
racing its twin through the dialog engine). This variant offsets the second thread by half the list,
so every request is a new message. Same arguments and output as perf_webhook.py.
"""

import os
import sys
import textwrap

sys.path.insert(0, os.environ.get("BENCH_DIR", "/work/shared/bench"))
import perf_webhook

_original = perf_webhook.lua_requests


def lua_requests(secret: str, n: int, mode: str) -> tuple[str, str]:
    script, data = _original(secret, n, mode)
    with open(script, "a") as f:
        f.write(
            "\nlocal threads = 0\n"
            f"setup = function(thread) thread:set('offset', threads * {n // 2}); threads = threads + 1 end\n"
            "init = function(args) i = offset or 0 end\n"
        )
    return script, data


perf_webhook.lua_requests = lua_requests

if __name__ == "__main__":
    # run perf_webhook.py's main block in its own namespace, where lua_requests is now the one above
    with open(perf_webhook.__file__, encoding="utf-8") as f:
        main = f.read().split('if __name__ == "__main__":', 1)[1]
    exec(textwrap.dedent(main), vars(perf_webhook))
