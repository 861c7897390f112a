"""The webhook portal in a real browser (headless Debian chromium driven by Playwright) over the local stack,
delivering to real receivers on 127.0.0.1. `make screenshots` writes the main views to docs/portal/."""

import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from receivers import Answer, Received, receiver

from api_client import ApiClient
from e2e.conftest import (
    CUSTOM_HEADER,
    PORTAL_BANNER,
    SECRETS,
    SUBSCRIPTION_SECRET,
    WAIT_SECONDS,
    RunningStack,
    eventually,
    running_stack,
    statuses,
    subscribe,
    verify_all_signatures,
)
from hookrelay.api_keys import hash_key
from hookrelay.store.api_keys import DynamoApiKeyStore

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
# The README's screenshots are written only when asked (`make screenshots`): a test run leaves the
# tracked files as they are, and takes its screenshots into a temporary folder instead.
SCREENSHOTS_VARIABLE = "HOOKRELAY_PORTAL_SCREENSHOTS"
EVENT = "signature_request.done"
XSS = '<img src=x onerror="window.__pwned = true">'
# Generous: the page polls every second; a loaded machine can starve the stack for seconds.
WAIT_MS = 60_000
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def portal_stack() -> Iterator[RunningStack]:
    # Receivers on 127.0.0.1 over plain http; automatic retries an hour away, so what the page shows
    # after a failure stays put until the test retries by hand.
    with running_stack(
        {
            "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true",
            "HOOKRELAY_RETRY_SCHEDULE": "1h",
            "HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS": "0",
            # How long a revoked key, and the sessions it opened, may still work: short, so that the
            # tests of sign-out and revocation see it pass.
            "HOOKRELAY_API_KEY_CACHE_SECONDS": "1",
        }
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def api(portal_stack: RunningStack) -> ApiClient:
    return portal_stack.new_team()


def portal_url(api: ApiClient, **options: object) -> str:
    response = api.post("/v3/portal-sessions", options or None)
    assert response.status == 201, response.body
    url: str = response.json()["url"]
    return url


def screenshot(page: Page, name: str) -> None:
    asked = os.environ.get(SCREENSHOTS_VARIABLE)
    folder = Path(asked) if asked else Path(tempfile.gettempdir()) / "hookrelay-portal-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=False)


def heading(page: Page, text: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(text)


def button(page: Page, name: str) -> Any:
    return page.get_by_role("button", name=name, exact=True)


def unlabelled_controls(page: Page) -> list[str]:
    """Every input, select, textarea and button without an accessible name (as axe's label rules check)."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea, button")]
            .filter((control) => control.offsetParent !== null || control.closest("dialog[open]"))
            .filter((control) => {
              const byLabel = [...(control.labels || [])].map((label) => label.textContent.trim()).join("");
              const byAria = control.getAttribute("aria-label")
                || (control.getAttribute("aria-labelledby") || "").split(" ")
                  .map((id) => document.getElementById(id)?.textContent.trim() || "").join("");
              const own = control.tagName === "BUTTON" ? control.textContent.trim() : "";
              return !(byLabel || byAria || own);
            })
            .map((control) => control.outerHTML)"""
    )
    return found


def token_fetch(page: Page, method: str, path: str, body: object = None) -> int:
    """A request made by the page's own script context, with the token the page keeps (sessionStorage)."""
    status: int = page.evaluate(
        """async ([method, path, body]) => {
            const token = sessionStorage.getItem("hookrelay.portal.token");
            const init = { method, headers: { Authorization: `Bearer ${token}` } };
            if (body !== null) {
              init.body = JSON.stringify(body);
              init.headers["Content-Type"] = "application/json";
            }
            return (await fetch(path, init)).status;
        }""",
        [method, path, body],
    )
    return status


def refresh_until_visible(page: Page, wanted: Locator) -> None:
    """Refresh the delivery log until `wanted` shows: it lists through the deliveries index, which lags its
    table (by HOOKRELAY_LOCAL_INDEX_LAG_MS here, as DynamoDB's indexes do), so a user may refresh twice."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        button(page, "Refresh").click()
        try:
            expect(wanted).to_be_visible(timeout=1_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def test_manage_an_endpoint_and_follow_its_deliveries(page: Page, api: ApiClient) -> None:
    failing = {"now": False}

    def answer(_: Received) -> Answer:
        return Answer(500, XSS.encode()) if failing["now"] else Answer(200, b"thanks")

    with receiver(answer) as endpoint:
        page.goto(portal_url(api))
        heading(page, "Webhook endpoints")
        assert "token" not in page.url  # taken out of the address bar

        # Create, with the event picked from the catalog (its description beside it).
        button(page, "Add endpoint").click()
        heading(page, "Add an endpoint")
        page.get_by_label("Endpoint URL").fill(f"http://127.0.0.1:{endpoint.port}/hooks")
        page.get_by_label("Description").fill("Signed contracts")
        page.get_by_label(EVENT, exact=True).check()
        assert unlabelled_controls(page) == []
        screenshot(page, "create")
        button(page, "Create endpoint").click()
        heading(page, "Signed contracts")
        expect(page.locator("dt", has_text="Events").locator("+ dd")).to_have_text(EVENT)
        secret = page.get_by_role("textbox", name="Signing secret").input_value()
        SECRETS.add(SUBSCRIPTION_SECRET, secret)
        assert secret.startswith("whsec_")
        screenshot(page, "secret-once")
        subscription_id = api.get("/v3/webhooks").json()["data"][0]["id"]

        # A test event, delivered and signed with that secret.
        page.get_by_label("Event to send").select_option(EVENT)
        button(page, "Send test event").click()
        expect(page.get_by_text("Test event delivered: HTTP 200")).to_be_visible()
        verify_all_signatures(endpoint.received[-1], secret, subscription_id)

        # The failure shows, with the receiver's answer as text; a retry by hand delivers it.
        failing["now"] = True
        button(page, "Send test event").click()
        expect(page.get_by_text("Test event scheduled: HTTP 500")).to_be_visible()
        refresh_until_visible(page, page.locator("tbody tr").first.get_by_text("scheduled"))
        page.locator("tbody tr").first.get_by_role("button").click()
        heading(page, f"Delivery of {EVENT}")
        attempt = page.locator("tr.attempt").last
        expect(attempt).to_contain_text("500")
        expect(attempt.locator("pre")).to_have_text(XSS)
        expect(page.locator("pre", has_text='"event_name"')).to_be_visible()  # the request's body
        failing["now"] = False
        button(page, "Retry now").click()
        expect(page.get_by_role("status").first).to_contain_text("Retried: delivered, HTTP 200")
        expect(page.locator("tr.attempt")).to_have_count(2)
        expect(page.locator("tr.attempt").last).to_contain_text("200")
        expect(page.locator("dt", has_text="Status").locator("+ dd")).to_have_text("delivered")
        expect(page.locator("dt", has_text="URL").locator("+ dd")).to_have_text(
            f"POST http://127.0.0.1:{endpoint.port}/hooks"
        )
        screenshot(page, "delivery")
        assert page.evaluate("window.__pwned") is None

        # Rotate: the new secret is shown once and signs what is sent next.
        button(page, "← Endpoint").click()
        button(page, "Rotate secret").click()
        expect(page.get_by_role("textbox", name="Signing secret")).not_to_have_value(secret)
        rotated = page.get_by_role("textbox", name="Signing secret").input_value()
        SECRETS.add(SUBSCRIPTION_SECRET, rotated)
        assert rotated.startswith("whsec_")
        button(page, "Send test event").click()
        expect(page.get_by_text("Test event delivered: HTTP 200")).to_be_visible()
        verify_all_signatures(endpoint.received[-1], rotated, subscription_id)
        page.get_by_label("Failed since").fill("2024-01-01T00:00")
        button(page, "Recover").click()
        expect(page.get_by_text("0 failed deliveries sent again.")).to_be_visible()
        page.get_by_role("heading", level=1).scroll_into_view_if_needed()
        screenshot(page, "endpoint")

        # The list shows its health.
        button(page, "← All endpoints").click()
        row = page.locator("tbody tr", has_text="Signed contracts")
        expect(row).to_contain_text("Enabled")
        expect(row).to_contain_text("HTTP 200")
        screenshot(page, "endpoints")

        # Delete, after a confirmation.
        row.get_by_role("button").click()
        button(page, "Delete").click()
        expect(page.get_by_role("dialog")).to_be_visible()
        assert unlabelled_controls(page) == []
        button(page, "Delete endpoint").click()
        expect(page.get_by_text("No webhook endpoints yet.")).to_be_visible()
        assert api.get(f"/v3/webhooks/{subscription_id}").status == 404


def test_a_read_only_link_shows_everything_and_changes_nothing(page: Page, api: ApiClient) -> None:
    with receiver() as endpoint:
        subscription = subscribe(api, f"http://127.0.0.1:{endpoint.port}/ro", description="Audit copy")
        sent = api.post(f"/v3/webhooks/{subscription['id']}/test")
        assert sent.status == 202
        # The page shows the deliveries as they are listed when it loads: listed only through the
        # deliveries index, which lags its table as DynamoDB's does.
        eventually(lambda: statuses(api, subscription["id"]).get(sent.json()["id"]) == "delivered", "the test listed")
        page.goto(portal_url(api, read_only=True))
        expect(page.locator("#session")).to_contain_text("Read-only link")
        row = page.locator("tbody tr", has_text="Audit copy")
        expect(row).to_contain_text("HTTP 200")
        row.get_by_role("button").click()
        heading(page, "Audit copy")
        expect(page.locator("tbody tr")).to_have_count(1)  # the delivery log
        screenshot(page, "read-only")
        for write in ("Edit", "Rotate secret", "Delete", "Send test event", "Recover"):
            expect(button(page, write)).to_have_count(0)
        page.locator("tbody tr").first.get_by_role("button").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Delivery of")
        expect(page.locator("tr.attempt")).to_contain_text("200")
        expect(button(page, "Retry now")).to_have_count(0)
        # Links to the forms show no form: the subscription, or the list.
        for route, shown in (
            (f"#/webhooks/{subscription['id']}/edit", "Audit copy"),
            ("#/webhooks/new", "Webhook endpoints"),
        ):
            page.evaluate("route => { location.hash = route; }", route)
            heading(page, shown)
            expect(page.locator("form")).to_have_count(0)
        path = f"v3/webhooks/{subscription['id']}"
        assert token_fetch(page, "PATCH", path, {"enabled": False}) == 403
        assert token_fetch(page, "DELETE", path) == 403
        assert token_fetch(page, "POST", f"{path}/secret/rotate", {}) == 403
        assert api.get(f"/{path}").json()["enabled"] is True


def test_tenant_data_is_text_and_other_teams_never_show(page: Page, api: ApiClient, portal_stack: RunningStack) -> None:
    other = ApiClient(api.transport, portal_stack.create_key(f"other-{uuid.uuid4().hex[:8]}"))
    theirs = subscribe(other, "https://other.example/hooks", description="Another team's endpoint")
    subscribe(api, "https://mine.example/hooks", description=XSS)
    page.goto(portal_url(api))
    row = page.locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text(XSS)
    row.get_by_role("button").click()
    heading(page, XSS)
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert "Another team" not in page.content() and "other.example" not in page.content()
    assert token_fetch(page, "GET", f"v3/webhooks/{theirs['id']}") == 404
    assert token_fetch(page, "POST", "v3/portal-sessions", {}) == 403


def test_an_expired_or_bad_link_shows_no_data(page: Page, api: ApiClient, portal_stack: RunningStack) -> None:
    subscribe(api, "https://mine.example/hooks", description="Not to be seen")
    expired = "hrp_expired_" + uuid.uuid4().hex * 2
    store = DynamoApiKeyStore(portal_stack.table("ApiKeysTable"))
    team = api.get("/v3/portal-sessions/current").status  # an API key: no session (404)
    assert team == 404
    store.add_portal_token(hash_key(expired), "dev", read_only=False, expires_at=int(time.time()) - 1, opened_by=None)
    for url in (f"{portal_stack.url}/portal#token={expired}", f"{portal_stack.url}/portal#token=hrp_bogus"):
        page.goto(url)
        heading(page, "This link has expired")
        assert page.locator("table").count() == 0
    screenshot(page, "expired")
    page.goto(f"{portal_stack.url}/portal")
    heading(page, "This link has expired")


def open_until_ended(page: Page, url: str) -> None:
    """Open the link until the page says it has ended: warm authorizers may accept it for
    HOOKRELAY_API_KEY_CACHE_SECONDS more."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        page.goto("about:blank")
        page.goto(url)
        try:
            expect(page.get_by_role("heading", level=1)).to_have_text("This link has expired", timeout=2_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def test_signing_out_ends_the_link(page: Page, api: ApiClient) -> None:
    subscribe(api, "https://mine.example/hooks", description="Mine")
    url = portal_url(api)
    page.goto(url)
    heading(page, "Webhook endpoints")
    button(page, "Sign out").click()
    heading(page, "Signed out")
    expect(button(page, "Sign out")).to_be_hidden()
    assert page.locator("table").count() == 0
    # The link itself no longer opens the portal, in this tab or any other.
    open_until_ended(page, url)
    assert "Mine" not in page.content()


def test_a_session_ends_when_the_key_that_opened_it_is_revoked(page: Page, portal_stack: RunningStack) -> None:
    team = f"team-{uuid.uuid4().hex[:8]}"
    leaked_key = portal_stack.create_key(team)
    leaked = ApiClient(portal_stack.new_team().transport, leaked_key)
    subscribe(leaked, "https://mine.example/hooks", description="Opened with a leaked key")
    url = portal_url(leaked)
    page.goto(url)
    heading(page, "Webhook endpoints")
    expect(page.locator("tbody tr")).to_have_count(1)

    assert DynamoApiKeyStore(portal_stack.table("ApiKeysTable")).remove(team, hash_key(leaked_key)[:12])
    open_until_ended(page, url)
    assert page.locator("table").count() == 0


def test_keyboard_only(page: Page, api: ApiClient) -> None:
    page.goto(portal_url(api))
    heading(page, "Webhook endpoints")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Add endpoint":
            break
    page.keyboard.press("Enter")
    heading(page, "Add an endpoint")
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Endpoint URL")).to_be_focused()
    page.keyboard.type("https://keyboard.example/hooks")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Description")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # the first event of the catalog
    expect(page.locator(".events input").first).to_be_checked()
    page.get_by_label("Description").focus()
    page.keyboard.type("Typed")
    page.keyboard.press("Enter")  # submits the form
    heading(page, "Typed")
    assert unlabelled_controls(page) == []


def test_local_up_prints_a_portal_link_for_the_dev_team(page: Page, portal_stack: RunningStack) -> None:
    banner = PORTAL_BANNER.search(portal_stack.text())
    assert banner, portal_stack.text()
    assert banner.group(0).startswith("Webhook portal (team dev, until ")
    page.goto(banner.group(0).rsplit(": ", 1)[1])
    heading(page, "Webhook endpoints")
    expect(page.locator("#session")).to_contain_text("Link valid until")


def test_a_429_is_tried_again_after_its_retry_after(page: Page, api: ApiClient) -> None:
    # Issue 24: the team's request limit (or the API's throttling) answers 429; the page waits it out.
    with receiver() as endpoint:
        subscribe(api, f"http://127.0.0.1:{endpoint.port}/limited", description="Behind a 429")
        refused: list[float] = []

        def limited(route: Any) -> None:
            if len(refused) < 2:
                refused.append(time.monotonic())
                problem = {"type": "about:blank", "title": "Too Many Requests", "status": 429, "detail": "over"}
                route.fulfill(
                    status=429,
                    headers={"Retry-After": "1", "Content-Type": "application/problem+json"},
                    body=json.dumps(problem),
                )
            else:
                route.continue_()

        page.route(re.compile(r"/v3/webhooks(\?[^/]*)?$"), limited)
        page.goto(portal_url(api))
        expect(page.locator("tbody tr", has_text="Behind a 429")).to_be_visible()
        assert len(refused) == 2 and refused[1] - refused[0] >= 0.9


# Every word of the page's text (machine text, in code and pre, aside) that the browser laid out over two lines.
BROKEN_WORDS = """() => {
    const broken = [];
    const walker = document.createTreeWalker(document.querySelector("main"), NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement.closest("code, pre, option")) continue;
      for (const word of node.textContent.matchAll(/[\\p{L}\\p{N}]+/gu)) {
        const range = document.createRange();
        range.setStart(node, word.index);
        range.setEnd(node, word.index + word[0].length);
        const lines = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
        if (lines.size > 1) broken.push(`${word[0]} in ${node.parentElement.tagName}`);
      }
    }
    return broken;
}"""


def a_delivered_test_event(api: ApiClient, port: int, **fields: object) -> tuple[dict[str, object], str]:
    """A subscription to a receiver on `port` and the id of its test event, delivered and listed."""
    subscription = subscribe(
        api, f"http://127.0.0.1:{port}/hooks", description="Signed contracts", subscribed_events=[EVENT], **fields
    )
    sent = api.post(f"/v3/webhooks/{subscription['id']}/test")
    assert sent.status == 202, sent.body
    delivery: str = sent.json()["id"]
    eventually(lambda: statuses(api, subscription["id"]).get(delivery) == "delivered", "the test event listed")
    return subscription, delivery


def test_at_390_px_no_word_breaks_in_two_and_the_page_never_scrolls_sideways(browser: Browser, api: ApiClient) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    try:
        with receiver() as endpoint:
            a_delivered_test_event(api, endpoint.port, headers={"X-Tenant": "acme"}, rate_limit=5)
            page.goto(portal_url(api))
            # Each view's title, and what shows once it has loaded all it shows.
            views = {
                "endpoints": ("Webhook endpoints", page.locator("td", has_text="HTTP 200")),
                "endpoint": ("Signed contracts", page.locator("tbody tr", has_text="delivered")),
                "delivery": (f"Delivery of {EVENT}", page.locator("tr.attempt", has_text="200")),
            }
            for view, (title, loaded) in views.items():
                heading(page, title)
                expect(loaded).to_be_visible()
                assert page.evaluate(BROKEN_WORDS) == [], view
                assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), view
                screenshot(page, f"390px-{view}")
                if view == "endpoints":
                    page.locator("tbody tr", has_text="Signed contracts").get_by_role("button").click()
                elif view == "endpoint":
                    page.locator("tbody tr").first.get_by_role("button").click()
    finally:
        context.close()


def test_a_delivery_shows_each_attempts_url_and_its_json_body_indented(page: Page, api: ApiClient) -> None:
    with receiver() as first, receiver() as second:
        subscription, _ = a_delivered_test_event(api, first.port)
        moved = f"http://127.0.0.1:{second.port}/moved"
        assert api.patch(f"/v3/webhooks/{subscription['id']}", {"endpoint": moved}).status == 200
        page.goto(portal_url(api))
        page.locator("tbody tr", has_text="Signed contracts").get_by_role("button").click()
        page.locator("tbody tr").first.get_by_role("button").click()
        heading(page, f"Delivery of {EVENT}")
        expect(page.locator("tr.attempt").locator("td").nth(1)).to_have_text(f"http://127.0.0.1:{first.port}/hooks")
        expect(page.locator("dt", has_text="URL").locator("+ dd")).to_have_text(f"POST {moved}")
        body = page.locator("section[aria-labelledby=request-title] pre").inner_text()
        assert body == json.dumps(json.loads(body), indent=2, ensure_ascii=False)  # one line before
        assert len(body.splitlines()) > 3


def test_settings_show_custom_headers_rate_limit_signature_scheme_and_public_key(page: Page, api: ApiClient) -> None:
    subscription = subscribe(
        api,
        "https://mine.example/hooks",
        description="Every setting",
        headers={"X-Tenant": "acme", "X-Client-Id": "client-0123456789"},
        sensitive_headers=["X-Client-Id"],
        rate_limit=5,
        signature_scheme="ed25519",
    )
    page.goto(portal_url(api))
    page.locator("tbody tr", has_text="Every setting").get_by_role("button").click()
    heading(page, "Every setting")

    def setting(name: str) -> Locator:
        return page.locator("dt", has_text=re.compile(f"^{name}$")).locator("+ dd")

    expect(setting("Custom headers").locator("li")).to_have_text(["X-Tenant: acme", "X-Client-Id: ***6789"])
    expect(setting("Rate limit")).to_have_text("5 requests per second")
    expect(setting("Signature scheme")).to_have_text("ed25519")
    expect(setting("Public key")).to_have_text(str(subscription["public_key"]))
    assert "client-0123" not in page.content()


def test_edit_custom_headers_and_move_the_endpoint_typing_its_credential_again(page: Page, api: ApiClient) -> None:
    first_token, second_token, customer_value = (
        "Bearer first-token-0123456789",
        "Bearer second-token-9876543210",
        "customer-secret-42",
    )
    for value in (second_token, customer_value):  # typed in the browser, which the API client never sees
        SECRETS.add(CUSTOM_HEADER, value)
    with receiver() as first, receiver() as second:
        subscription = subscribe(
            api, f"http://127.0.0.1:{first.port}/hooks", description="Moving", headers={"Authorization": first_token}
        )
        page.goto(portal_url(api))
        page.locator("tbody tr", has_text="Moving").get_by_role("button").click()
        button(page, "Edit").click()
        heading(page, "Edit endpoint")
        names = page.get_by_role("textbox", name="Header name")
        values = page.get_by_role("textbox", name="Header value")
        expect(names).to_have_count(1)
        expect(names.first).to_have_value("Authorization")
        expect(values.first).to_have_value("***6789")  # write-only: masked in the form too

        # A write-only header added, and the endpoint moved to another origin (port): the stored token was
        # written for the first, so the API asks for it again, and the form says so.
        button(page, "Add a header").click()
        names.nth(1).fill("X-Customer")
        values.nth(1).fill(customer_value)
        page.get_by_label("Write-only").nth(1).check()
        page.get_by_label("Endpoint URL").fill(f"http://127.0.0.1:{second.port}/hooks")
        assert unlabelled_controls(page) == []
        button(page, "Save changes").click()
        expect(page.get_by_role("alert")).to_contain_text("headers.Authorization")
        heading(page, "Edit endpoint")
        values.first.fill(second_token)
        button(page, "Save changes").click()
        heading(page, "Moving")
        custom_headers = page.locator("dt", has_text=re.compile("^Custom headers$")).locator("+ dd").locator("li")
        expect(custom_headers).to_have_text(["Authorization: ***3210", "X-Customer: ***t-42"])

        page.get_by_label("Event to send").select_option(EVENT)
        button(page, "Send test event").click()
        expect(page.get_by_text("Test event delivered: HTTP 200")).to_be_visible()
        sent = second.received[-1].headers
        assert (sent["Authorization"], sent["X-Customer"]) == (second_token, customer_value)
        assert first.received == []

        # A header removed; the write-only value left as shown keeps the stored one.
        button(page, "Edit").click()
        heading(page, "Edit endpoint")
        expect(names.nth(1)).to_have_value("X-Customer")
        page.locator(".header-row").nth(1).get_by_role("button", name="Remove").click()
        button(page, "Save changes").click()
        heading(page, "Moving")
        expect(custom_headers).to_have_text(["Authorization: ***3210"])
        button(page, "Send test event").click()
        expect(page.get_by_text("Test event delivered: HTTP 200")).to_be_visible()
        sent = second.received[-1].headers
        assert sent["Authorization"] == second_token and "X-Customer" not in sent
        assert api.get(f"/v3/webhooks/{subscription['id']}").json()["sensitive_headers"] == []
        for secret in (first_token, second_token, customer_value):
            assert secret.split("-", 1)[1] not in page.content()


def test_deep_links_survive_reload_and_back_stays_in_the_portal(page: Page, api: ApiClient) -> None:
    with receiver() as endpoint:
        subscription, delivery = a_delivered_test_event(api, endpoint.port)
        page.goto(portal_url(api))
        heading(page, "Webhook endpoints")
        portal = page.url.split("#")[0]
        assert page.url == f"{portal}#/webhooks"
        page.locator("tbody tr", has_text="Signed contracts").get_by_role("button").click()
        heading(page, "Signed contracts")
        assert page.url == f"{portal}#/webhooks/{subscription['id']}"
        page.locator("tbody tr").first.get_by_role("button").click()
        heading(page, f"Delivery of {EVENT}")
        assert page.url == f"{portal}#/webhooks/{subscription['id']}/deliveries/{delivery}"

        page.reload()
        heading(page, f"Delivery of {EVENT}")
        expect(page.locator("dt", has_text="Delivery id").locator("+ dd")).to_have_text(delivery)

        page.go_back()
        heading(page, "Signed contracts")
        expect(page.locator("tbody tr")).to_have_count(1)  # its delivery log
        page.go_back()
        heading(page, "Webhook endpoints")
        assert page.url == f"{portal}#/webhooks"
        # A link to a view opens it in a new tab of the same session, and the token never shows in the address.
        page.goto(f"{portal}#/webhooks/{subscription['id']}/deliveries/{delivery}")
        heading(page, f"Delivery of {EVENT}")
        assert "token" not in page.url


def test_no_request_of_the_page_is_refused_and_it_has_an_icon(page: Page, api: ApiClient) -> None:
    answers: list[tuple[int, str]] = []
    page.on("response", lambda response: answers.append((response.status, response.url)))
    page.goto(portal_url(api))
    heading(page, "Webhook endpoints")
    page.reload()
    heading(page, "Webhook endpoints")
    icon = page.evaluate(
        """async () => {
            const response = await fetch(document.querySelector("link[rel=icon]").href);
            return [response.status, response.headers.get("Content-Type")];
        }"""
    )
    assert icon == [200, "image/svg+xml"]
    assert [answer for answer in answers if answer[0] >= 400] == []


def test_recover_says_its_time_zone_and_sends_that_moment_in_utc(browser: Browser, api: ApiClient) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 800}, timezone_id="America/New_York")
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    try:
        subscribe(api, "https://mine.example/hooks", description="Recovered")
        page.goto(portal_url(api))
        page.locator("tbody tr", has_text="Recovered").get_by_role("button").click()
        heading(page, "Recovered")
        since = page.get_by_label(re.compile(r"^Failed since \(your time zone: America/New_York, UTC-0[45]:00\)$"))
        since.fill("2024-01-01T00:00")
        with page.expect_request(re.compile(r"/recover$")) as recover:
            button(page, "Recover").click()
        expect(page.get_by_text("0 failed deliveries sent again.")).to_be_visible()
        assert json.loads(recover.value.post_data or "{}") == {"since": "2024-01-01T05:00:00.000Z"}
    finally:
        context.close()
