"""Where a conversation came from: its source, part of its identity ``(channel, open_id, source)``.

"" is the signed generic webhook, a platform's name a platform adapter (both chosen by whoever holds
a webhook secret), and ``widget:<site public key>`` a chat-widget site. Platform names cannot contain
":", so no signed webhook, whatever channel and open_id it claims, can write into a widget
conversation. Pure rules, no I/O.
"""

from __future__ import annotations

WIDGET_SOURCE_PREFIX = "widget:"


def widget_source(public_key: str) -> str:
    """The source of a widget site's conversations."""
    return f"{WIDGET_SOURCE_PREFIX}{public_key}"


def source_platform(source: str) -> str | None:
    """The platform adapter behind a source (``None``: the generic webhook or a widget site, whose
    events go to the channel's callback subscription, if any)."""
    return None if not source or source.startswith(WIDGET_SOURCE_PREFIX) else source
