"""Start-up raises the soft open-files limit to the hard limit (issue #12, item 4): with the limit at
300, 320 slow sockets made health checks and webhooks fail."""

from __future__ import annotations

import resource

from ai_customer_service.server import raise_open_files_limit


def test_the_soft_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(300, hard), hard))
        limit = raise_open_files_limit()
        new_soft, new_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert new_hard == hard  # the hard limit is never lowered
        expected = 1_048_576 if hard == resource.RLIM_INFINITY else hard
        assert new_soft == limit == expected
    finally:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (max(soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]), hard)
        )
