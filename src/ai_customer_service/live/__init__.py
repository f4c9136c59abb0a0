"""Live events for browsers (agent console, chat widget): written with each change, streamed per process.

Public surface: :func:`live_row`, :func:`insert_live`, :func:`publish_live`, :class:`LiveHub`,
:class:`Subscription`, :class:`LiveEvent`, :class:`StreamClosed`, :data:`RESET`, :data:`LIVE_TABLE`.
See :mod:`ai_customer_service.live.hub`.
"""

from ai_customer_service.live.hub import (
    LIVE_TABLE,
    RESET,
    LiveEvent,
    LiveHub,
    StreamClosed,
    Subscription,
    insert_live,
    live_row,
    publish_live,
    purge_live_events,
)

__all__ = [
    "LIVE_TABLE",
    "RESET",
    "LiveEvent",
    "LiveHub",
    "StreamClosed",
    "Subscription",
    "insert_live",
    "live_row",
    "publish_live",
    "purge_live_events",
]
