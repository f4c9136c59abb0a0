"""The widget end to end in a real headless Chromium (Debian's /usr/bin/chromium, never downloaded):
the demo page, a KB answer with its citation, 转人工, an agent's reply arriving live (also through a
second server process), history after a reload, isolation between visitors, a refused origin.

Screenshots land in ``tests/artifacts/`` (gitignored)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.knowledge import wait_for_knowledge
from tests.support.server import ServerProcess

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("AI_CS_TEST_CHROMIUM", "/usr/bin/chromium")
if not shutil.which(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)

API = "/api/v1/customer-service"
ARTIFACTS = Path(__file__).parent.parent / "artifacts"
ADMIN = {"Authorization": "Bearer admin-token"}
TIMEOUT_MS = 20_000


@pytest.fixture
def servers(
    db_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[list[ServerProcess]]:
    """Two processes on one database (the first loads the demo KB and the demo site)."""
    env = {
        **db_env,
        "AI_CS_RUNTIME_ENV": "development",
        "AI_CS_DEMO_KB": "true",
        "AI_CS_ADMIN_TOKEN": "admin-token",
        "AI_CS_WEBHOOK_SECRET": "",
    }
    count = getattr(request, "param", 1)
    procs = [ServerProcess(env=env, cwd=tmp_path) for _ in range(count)]  # started one by one
    try:
        for proc in procs:
            proc.start(timeout=60)
            wait_for_knowledge(proc.url)
        yield procs
    finally:
        for proc in procs:
            proc.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as pw:
        # the "other websites" are served by the browser's router under public names while the
        # service listens on 127.0.0.1: switch off Chromium's public-to-local request blocking,
        # which a real deployment (a public service) never meets
        args = [
            "--no-sandbox",
            "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,"
            "PrivateNetworkAccessSendPreflights",
        ]
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield chromium
        finally:
            chromium.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"widget-{name}.png"))


def open_widget(browser: Any, url: str, *, locale: str = "en-US") -> tuple[Any, Any]:
    context = browser.new_context(locale=locale, viewport={"width": 1100, "height": 760})
    page = context.new_page()
    page.goto(url)
    page.get_by_role("button", name="Open chat").click()
    page.get_by_role("textbox", name="Message").wait_for(timeout=TIMEOUT_MS)
    return context, page


def ask(page: Any, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_role("button", name="Send").click()


def agent_token(base: str) -> str:
    created = httpx.post(f"{base}{API}/principals", json={"name": "alice", "role": "agent"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    return str(created.json()["token"])


def widget_ticket(base: str, headers: dict[str, str]) -> str:
    listed = httpx.get(f"{base}{API}/tickets", params={"channel": "widget"}, headers=headers).json()
    assert listed["items"], listed
    return str(listed["items"][0]["id"])


def test_the_demo_page_answers_hands_off_and_keeps_history(
    servers: list[ServerProcess], browser: Any
) -> None:
    base = servers[0].url
    context, page = open_widget(browser, f"{base}/demo/")
    log = page.get_by_role("log")
    ask(page, "How do I reset my password?")
    log.get_by_text("Forgot password", exact=False).wait_for(timeout=TIMEOUT_MS)
    assert "Reset your password" in log.inner_text()  # the citation's title under "Sources"
    shot(page, "1-answer")

    ask(page, "money")  # too vague: "did you mean" titles, as buttons
    choices = log.get_by_role("group", name="Did you mean:").get_by_role("button")
    choices.first.wait_for(timeout=TIMEOUT_MS)
    assert "Pricing" in choices.all_inner_texts()
    log.get_by_role("button", name="Pricing").click()
    log.get_by_text("You pay per token", exact=False).wait_for(timeout=TIMEOUT_MS)
    shot(page, "1b-did-you-mean")

    ask(page, "转人工")
    log.get_by_text("已为您转接人工客服", exact=False).wait_for(timeout=TIMEOUT_MS)
    shot(page, "2-handoff")

    page.reload()
    page.get_by_role("textbox", name="Message").wait_for(timeout=TIMEOUT_MS)  # reopened after reload
    page.get_by_role("log").get_by_text("转人工").wait_for(timeout=TIMEOUT_MS)
    assert "How do I reset my password?" in page.get_by_role("log").inner_text()
    shot(page, "3-after-reload")

    other, second = open_widget(browser, f"{base}/demo/")
    second.wait_for_timeout(1500)  # give a wrongly shared history every chance to show up
    assert "reset my password" not in second.get_by_role("log").inner_text()
    shot(second, "4-second-visitor")
    other.close()
    context.close()


def page_on(context: Any, origin: str, service: str, site_key: str) -> Any:
    """A page of another website (served by the browser's router) embedding the service's widget."""
    html = (
        "<!doctype html><html lang='en'><head><title>Shop</title></head><body><h1>Another shop</h1>"
        f"<script src='{service}/widget.js' data-site='{site_key}' async></script></body></html>"
    )
    context.route(f"{origin}/", lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    page = context.new_page()
    page.goto(f"{origin}/")
    return page


def test_a_site_works_cross_origin_and_refuses_other_origins(
    servers: list[ServerProcess], browser: Any, tmp_path: Path
) -> None:
    from tests.support.server import run_cli

    base = servers[0].url
    created = run_cli(
        "sites", "create", "--name", "shop", "--origin", "http://shop.test", env=servers[0].env, cwd=tmp_path
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.split("key=")[1].split()[0]

    context = browser.new_context(locale="zh-CN")
    page = page_on(context, "http://shop.test", base, key)
    page.get_by_role("button", name="打开在线客服").click()
    page.get_by_role("textbox", name="消息").fill("怎么重置密码")
    page.get_by_role("button", name="发送").click()
    page.get_by_role("log").get_by_text("忘记密码", exact=False).wait_for(timeout=TIMEOUT_MS)
    shot(page, "5-cross-origin-zh")

    evil = page_on(context, "http://evil.test", base, key)
    evil.get_by_role("button", name="打开在线客服").click()
    evil.get_by_text("当前页面无法使用在线客服").wait_for(timeout=TIMEOUT_MS)
    assert evil.get_by_role("button", name="发送").is_disabled()
    shot(evil, "6-refused-origin")
    context.close()


@pytest.mark.parametrize("servers", [1, 2], indirect=True, ids=["one-process", "agent-on-another-process"])
def test_an_agents_reply_appears_in_the_widget_without_a_reload(
    servers: list[ServerProcess], browser: Any
) -> None:
    widget_side, agent_side = servers[0], servers[-1]
    context, page = open_widget(browser, f"{widget_side.url}/demo/")
    log = page.get_by_role("log")
    ask(page, "human agent")
    log.get_by_text("passed your conversation to a human agent", exact=False).wait_for(timeout=TIMEOUT_MS)
    alice = {"Authorization": f"Bearer {agent_token(agent_side.url)}"}
    ticket_id = widget_ticket(agent_side.url, alice)
    assert (
        httpx.post(f"{agent_side.url}{API}/tickets/{ticket_id}/assign", json={}, headers=alice).status_code
        == 200
    )
    log.get_by_text("An agent joined the conversation.").wait_for(timeout=TIMEOUT_MS)
    session_id = httpx.get(f"{agent_side.url}{API}/tickets/{ticket_id}", headers=alice).json()["session_id"]
    httpx.post(f"{agent_side.url}{API}/sessions/{session_id}/typing", json={"active": True}, headers=alice)
    page.get_by_text("Agent is writing…").wait_for(timeout=TIMEOUT_MS)
    shot(page, f"7-agent-typing-{len(servers)}")
    reply = httpx.post(
        f"{agent_side.url}{API}/tickets/{ticket_id}/reply",
        json={"content": "Hello, this is Alice from support. How can I help?"},
        headers=alice,
    )
    assert reply.status_code == 200, reply.text
    log.get_by_text("Hello, this is Alice from support.", exact=False).wait_for(timeout=TIMEOUT_MS)
    assert log.get_by_text("Hello, this is Alice from support.", exact=False).count() == 1
    shot(page, f"8-agent-reply-{len(servers)}")
    resolved = httpx.post(
        f"{agent_side.url}{API}/tickets/{ticket_id}/resolve", json={"resolution": "answered"}, headers=alice
    )
    assert resolved.status_code == 200, resolved.text
    page.get_by_role("button", name="Rate 5 of 5").click()
    log.get_by_text("Thank you for your rating!").wait_for(timeout=TIMEOUT_MS)
    shot(page, f"9-rated-{len(servers)}")
    detail = httpx.get(f"{agent_side.url}{API}/sessions/{session_id}", headers=alice)
    assert detail.status_code == 200
    context.close()
