"""Acceptance: a real headless Chromium against a real server process (issue #13).

Sign in; a signed 我要退款 arrives and appears in the inbox without a reload; open it, claim, reply
(stored, and delivered as ``agent.replied`` to the channel's callback); a new customer message
``<script>…</script>`` appears live, as text; resolve; close; a KB edit changes the "try a question"
answer; a form posted without its CSRF token is refused. Screenshots of each page go to
``tests/artifacts/`` (and, with ``AI_CS_UPDATE_README_SCREENSHOT=1``, the README's inbox image).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ai_customer_service.conversation.models import Message
from ai_customer_service.db.engine import Database
from ai_customer_service.ticket.models import Ticket
from tests.conftest import TEST_SECRET
from tests.support import browser as chrome
from tests.support.console import PASSWORD
from tests.support.receiver import Receiver
from tests.support.server import ServerProcess, clean_env, service_command
from tests.support.webhooks import WEBHOOK, message, signed

CALLBACK_SECRET = "widget-callback-secret-123"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(CALLBACK_SECRET).start()
    try:
        yield r
    finally:
        r.stop()


def console_env(db_env: dict[str, str], receiver: Receiver) -> dict[str, str]:
    return {
        **db_env,
        # plain http on 127.0.0.1 in the test; production keeps the Secure cookie (auto)
        "AI_CS_CONSOLE_COOKIE_SECURE": "false",
        "AI_CS_CHANNEL_WIDGET_CALLBACK_URL": receiver.url,
        "AI_CS_CHANNEL_WIDGET_CALLBACK_SECRET": CALLBACK_SECRET,
        "AI_CS_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
        "AI_CS_LIVE_POLL_INTERVAL_MS": "100",
    }


def create_person(env: dict[str, str], cwd: Path, name: str, role: str) -> str:
    """Through the CLI, as an operator does: the password on stdin, the token on the last line."""
    done = subprocess.run(
        [*service_command("agents", "create", "--name", name, "--role", role, "--password-stdin")],
        input=PASSWORD + "\n",
        cwd=cwd,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1]
    assert token.startswith("cst_")
    assert PASSWORD not in done.stdout + done.stderr
    return token


def send(server: ServerProcess, content: str, *, open_id: str, message_id: str) -> dict[str, Any]:
    raw, headers = signed(message(content, open_id=open_id, message_id=message_id), TEST_SECRET)
    answer = httpx.post(server.url + WEBHOOK, content=raw, headers=headers, timeout=20)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def sign_in(driver: Any, server: ServerProcess, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(server.url + "/console/")
    chrome.wait_for(driver, lambda d: "/console/login" in d.current_url)
    chrome.screenshot(driver, "01-login")
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit].primary").click()
    chrome.wait_for(driver, lambda d: d.current_url.rstrip("/").endswith("/console"))


def live(driver: Any) -> None:
    chrome.wait_for(
        driver, lambda d: d.find_element("tag name", "body").get_attribute("data-live-state") == "open"
    )


async def _rows(db: Database, stmt: Any) -> list[Any]:
    async with db.sessionmaker() as read:
        return list((await read.execute(stmt)).scalars())


async def test_an_agent_works_a_refund_request_in_the_browser(
    db: Database, db_env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    chrome.require_chromium()
    from selenium.webdriver.common.by import By

    env = console_env(db_env, receiver)
    create_person(env, tmp_path, "sam", "supervisor")
    server = ServerProcess(env=env, cwd=tmp_path).start()
    driver = chrome.start_browser()
    try:
        sign_in(driver, server, "sam")
        live(driver)
        driver.execute_script("window.__noReload = 1")
        chrome.screenshot(driver, "02-inbox-empty")

        # a signed 我要退款 arrives: it shows up in the inbox without a reload
        first = send(server, "我要退款", open_id="cust-browser", message_id="m-1")
        assert first["handoff"] is True and first["ticket_id"]
        ticket_id = first["ticket_id"]
        chrome.wait_for(
            driver,
            lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-ticket="{ticket_id}"]'),
            message="the new handoff did not appear in the inbox",
        )
        assert driver.execute_script("return window.__noReload") == 1
        assert "我要退款" in driver.find_element(By.ID, "inbox-rows").text
        # a few more customers, so the inbox shows its order (priority, then waiting time)
        for n, text in enumerate(
            ["My account was hacked, someone changed my email", "我要投诉你们的服务", "转人工"]
        ):
            send(server, text, open_id=f"cust-more-{n}", message_id=f"more-{n}")
        chrome.wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr[data-ticket]")) == 4)
        assert driver.execute_script("return window.__noReload") == 1
        chrome.screenshot(driver, "03-inbox")
        if os.environ.get("AI_CS_UPDATE_README_SCREENSHOT") == "1":
            chrome.README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(chrome.ARTIFACTS / "03-inbox.png", chrome.README_IMAGE)

        # open it and claim it
        chrome.click(driver, By.CSS_SELECTOR, f'tr[data-ticket="{ticket_id}"] a')  # the inbox is live
        chrome.wait_for(driver, lambda d: f"/console/tickets/{ticket_id}" in d.current_url)
        chrome.screenshot(driver, "04-ticket-open")
        chrome.click(driver, By.XPATH, "//button[normalize-space()='Claim']")
        chrome.wait_for(driver, lambda d: d.find_elements(By.ID, "reply-content"))

        # reply: the box is labelled "Reply" and its button "Send reply"
        label = driver.find_element(By.CSS_SELECTOR, "label[for=reply-content]")
        assert label.text == "Reply"
        box = driver.find_element(By.ID, "reply-content")
        box.clear()
        box.send_keys("您好，退款已提交，3 个工作日内到账。")
        chrome.click(driver, By.XPATH, "//button[normalize-space()='Send reply']")
        chrome.wait_for(driver, lambda d: "退款已提交" in d.find_element(By.ID, "conversation").text)
        stored = await _rows(db, select(Message.content).where(Message.author_type == "agent"))
        assert stored == ["您好，退款已提交，3 个工作日内到账。"]
        deadline = time.monotonic() + 15
        replied: list[Any] = []
        while time.monotonic() < deadline and not replied:
            replied = [r for r in receiver.acknowledged() if r.payload["type"] == "agent.replied"]
            time.sleep(0.1)
        assert replied, "agent.replied was not delivered to the channel callback"
        assert replied[0].payload["data"]["content"] == "您好，退款已提交，3 个工作日内到账。"
        assert replied[0].payload["ticket_id"] == ticket_id

        # the customer writes again, with markup: it appears live, as text
        live(driver)
        driver.execute_script("window.__noReload = 2")
        send(server, "<script>window.__pwned=1</script>", open_id="cust-browser", message_id="m-2")
        chrome.wait_for(
            driver,
            lambda d: "<script>window.__pwned=1</script>" in d.find_element(By.ID, "conversation").text,
            message="the new customer message did not appear live",
        )
        assert driver.execute_script("return window.__noReload") == 2
        assert driver.execute_script("return window.__pwned === undefined")
        chrome.screenshot(driver, "05-ticket-replied")

        # resolve, then close
        driver.find_element(By.ID, "resolution").send_keys("refund submitted")
        chrome.click(driver, By.XPATH, "//button[normalize-space()='Resolve']")
        chrome.wait_for(
            driver,
            lambda d: d.find_element(By.ID, "ticket-status").get_attribute("data-status") == "resolved",
        )
        chrome.click(driver, By.XPATH, "//button[normalize-space()='Close']")
        chrome.wait_for(
            driver, lambda d: d.find_element(By.ID, "ticket-status").get_attribute("data-status") == "closed"
        )
        chrome.screenshot(driver, "06-ticket-closed")
        statuses = await _rows(
            db, select(Ticket.status).where(Ticket.id == __import__("uuid").UUID(ticket_id))
        )
        assert statuses == ["closed"]

        # a form without its CSRF token is refused
        driver.get(server.url + "/console/kb/new")
        driver.execute_script("document.querySelector('form.entry input[name=csrf_token]').remove()")
        driver.find_element(By.ID, "title").send_keys("csrf probe")
        driver.find_element(By.ID, "answer").send_keys("should not be stored")
        driver.find_element(By.XPATH, "//button[normalize-space()='Save and publish']").click()
        chrome.wait_for(driver, lambda d: "CS_AUTH_4036" in d.page_source)
        chrome.screenshot(driver, "07-csrf-refused")

        # a KB edit changes what "try a question" answers
        driver.get(server.url + "/console/kb/new")
        driver.find_element(By.ID, "title").send_keys("Opening hours")
        driver.find_element(By.ID, "answer").send_keys("We are open 9:00-18:00.")
        driver.find_element(By.ID, "questions").send_keys("when are you open\nopening hours")
        driver.find_element(By.XPATH, "//button[normalize-space()='Save and publish']").click()
        chrome.wait_for(driver, lambda d: "/console/kb/" in d.current_url and "/new" not in d.current_url)
        entry_url = driver.current_url
        assert try_until(driver, server, "when are you open", "9:00-18:00")
        chrome.screenshot(driver, "08-kb-try")
        driver.get(entry_url)
        answer = driver.find_element(By.ID, "answer")
        answer.clear()
        answer.send_keys("We are open 8:00-20:00 every day.")
        driver.find_element(By.XPATH, "//button[normalize-space()='Save and publish']").click()
        chrome.wait_for(
            driver, lambda d: "8:00-20:00" in d.find_element(By.ID, "answer").get_attribute("value")
        )
        assert try_until(driver, server, "when are you open", "8:00-20:00")
        chrome.screenshot(driver, "09-kb-try-after-edit")

        # the other pages render (screenshots for review)
        driver.get(server.url + "/console/supervisor?period=7")
        chrome.wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "svg"))
        chrome.screenshot(driver, "10-supervisor")
        driver.get(server.url + "/console/kb")
        chrome.screenshot(driver, "11-kb")
        driver.get(server.url + "/console/lang?to=zh&next=/console/")
        chrome.wait_for(driver, lambda d: "收件箱" in d.page_source)
        chrome.screenshot(driver, "12-inbox-zh")
    finally:
        driver.quit()
        server.stop()


def try_until(
    driver: Any, server: ServerProcess, question: str, expected: str, timeout: float = 15.0
) -> bool:
    """Ask "try a question" until the answer shows ``expected`` (each process refreshes its index
    within AI_CS_KB_REFRESH_INTERVAL_SECONDS of an edit)."""
    from urllib.parse import quote

    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        driver.get(f"{server.url}/console/kb?ask={quote(question)}")
        found = driver.find_elements(By.ID, "try-reply")
        if found and expected in found[0].text:
            return True
        time.sleep(0.3)
    return False


async def test_an_event_on_one_replica_reaches_a_console_on_another(
    postgres_only: None, db: Database, db_env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    """Two server processes on one PostgreSQL: the browser watches replica A's inbox; the customer's
    message is processed by replica B; the row appears on A within 2 s, without a reload."""
    chrome.require_chromium()
    from selenium.webdriver.common.by import By

    env = console_env(db_env, receiver)
    create_person(env, tmp_path, "ava", "agent")
    a = ServerProcess(env=env, cwd=tmp_path).start()
    b = ServerProcess(env=env, cwd=tmp_path).start()
    driver = chrome.start_browser()
    try:
        sign_in(driver, a, "ava")
        live(driver)
        driver.execute_script("window.__noReload = 1")
        sent = send(b, "我要退款", open_id="cust-replica", message_id="r-1")
        ticket_id = sent["ticket_id"]
        chrome.wait_for(
            driver,
            lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-ticket="{ticket_id}"]'),
            timeout=2.0,
            message="the event made on replica B did not reach the console on replica A within 2 s",
        )
        assert driver.execute_script("return window.__noReload") == 1
        chrome.screenshot(driver, "20-inbox-other-replica")
    finally:
        driver.quit()
        a.stop()
        b.stop()
