"""/metrics across forked server processes (run in a subprocess: the switch is process-wide)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os, re
    from ai_customer_service import metrics as m

    os.environ[m.MULTIPROC_ENV] = "/nonexistent"  # inherited by a single-process server: ignored
    single = m.Metrics()
    single.handoffs.labels("refund").inc()
    assert b'cs_handoffs_total{reason="refund"} 1.0' in single.exposition()

    directory = m.enable_multiprocess()
    pid = os.fork()
    if pid == 0:
        child = m.Metrics()
        child.handoffs.labels("refund").inc(2)
        child.db_pool_size.set(5)
        os._exit(0)
    os.waitpid(pid, 0)
    parent = m.Metrics()
    parent.handoffs.labels("refund").inc()
    parent.db_pool_size.set(3)
    text = parent.exposition().decode()
    assert 'cs_handoffs_total{reason="refund"} 3.0' in text, text
    assert re.search(r"cs_db_pool_size(?:\\{[^}]*\\})? 8.0", text), text  # both still counted
    m.process_exited(pid)
    text = parent.exposition().decode()
    assert 'cs_handoffs_total{reason="refund"} 3.0' in text, text  # counters keep a dead worker's counts
    assert re.search(r"cs_db_pool_size(?:\\{[^}]*\\})? 3.0", text), text  # live gauges drop it
    print("ok", directory)
    """
)


def test_one_metrics_view_for_forked_processes_and_none_from_an_inherited_env() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok ")
    directory = result.stdout.split()[1]
    shutil.rmtree(directory, ignore_errors=True)
