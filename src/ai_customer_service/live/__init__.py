"""Live events for browsers (agent console, chat widget): written with each change, streamed per process.

Public surface: :func:`publish_live`, :class:`LiveHub`, :class:`Subscription`, :class:`LiveEvent`,
:class:`StreamClosed`, :data:`RESET`. See :mod:`ai_customer_service.live.hub`.
"""

from ai_customer_service.live.hub import (
    RESET,
    LiveEvent,
    LiveHub,
    StreamClosed,
    Subscription,
    publish_live,
    purge_live_events,
)

__all__ = [
    "RESET",
    "LiveEvent",
    "LiveHub",
    "StreamClosed",
    "Subscription",
    "publish_live",
    "purge_live_events",
]
