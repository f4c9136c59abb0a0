"""The source rule: which sources are platforms, and that no platform name can be a widget's source."""

from __future__ import annotations

from ai_customer_service.config import load_settings
from ai_customer_service.conversation.sources import source_platform, widget_source
from ai_customer_service.outbox.events import destinations_for


def test_widget_sources_are_not_platforms_and_route_like_the_generic_webhook() -> None:
    assert source_platform("") is None
    assert source_platform("sub2api") == "sub2api"
    assert source_platform(widget_source("ws_abc")) is None
    settings = load_settings(
        {
            "AI_CS_CHANNEL_WIDGET_CALLBACK_URL": "http://127.0.0.1:9/cb",
            "AI_CS_CHANNEL_WIDGET_CALLBACK_SECRET": "widget-callback-secret",
        },
        env_file=None,
    )
    # a widget site's events go to the channel's subscription, as the generic webhook's do
    platform = source_platform(widget_source("ws_abc"))
    assert destinations_for(settings, platform=platform, channel="widget") == ["channel:widget"]
    # and nowhere when the channel has no subscription (nothing is written that could get stuck)
    assert destinations_for(settings, platform=platform, channel="wechat") == []
