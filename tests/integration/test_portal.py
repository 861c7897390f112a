"""Portal sessions and the portal page (SPEC §2, §6) through the real authorizer and api handlers."""

import re
import time
from collections.abc import Callable
from datetime import datetime

import pytest

from api_client import ApiClient, ApiResponse
from api_contract import assert_problem, webhook
from hookrelay import wiring
from hookrelay.api_keys import hash_key
from hookrelay.aws import table
from hookrelay.settings import get_settings
from hookrelay_cli.local.stack import LocalStack
from integration.conftest import sample_event

TOKEN_IN_URL = re.compile(r"^http://127\.0\.0\.1/portal#token=(hrp_[A-Za-z0-9_-]{40,})$")


def open_session(api: ApiClient, **body: object) -> tuple[str, dict[str, str]]:
    response = api.post("/v3/portal-sessions", body if body else None)
    assert response.status == 201, response.body
    session: dict[str, str] = response.json()
    match = TOKEN_IN_URL.match(session["url"])
    assert match, session
    return match.group(1), session


def test_a_portal_session_is_a_short_lived_link_scoped_to_the_team(api: ApiClient, other_api: ApiClient) -> None:
    mine = api.post("/v3/webhooks", webhook(description="mine")).json()
    other_api.post("/v3/webhooks", webhook(description="theirs"))
    token, session = open_session(api)
    expires_at = datetime.fromisoformat(session["expires_at"])
    assert abs(expires_at.timestamp() - (time.time() + 3600)) < 60

    listed = api.get("/v3/webhooks", key=token).json()["data"]
    assert [subscription["id"] for subscription in listed] == [mine["id"]]
    assert api.patch(f"/v3/webhooks/{mine['id']}", {"description": "renamed"}, key=token).status == 200
    current = api.get("/v3/portal-sessions/current", key=token).json()
    assert current == {"team_id": "team-a", "read_only": False, "expires_at": session["expires_at"]}


def test_a_read_only_link_reads_everything_and_changes_nothing(api: ApiClient) -> None:
    subscription = api.post("/v3/webhooks", webhook()).json()
    path = f"/v3/webhooks/{subscription['id']}"
    token, _ = open_session(api, read_only=True, expires_in=60)
    for read in ("/v3/webhooks", path, f"{path}/deliveries", "/v3/webhook-event-types", "/v3/portal-sessions/current"):
        assert api.get(read, key=token).status == 200, read
    writes: list[tuple[str, str, object]] = [
        ("POST", "/v3/webhooks", webhook()),
        ("PATCH", path, {"enabled": False}),
        ("DELETE", path, None),
        ("POST", f"{path}/secret/rotate", None),
        ("POST", f"{path}/test", None),
        ("POST", f"{path}/recover", {"since": "2024-01-01T00:00:00Z"}),
        ("POST", f"{path}/deliveries/00000000-0000-0000-0000-000000000000/retry", None),
    ]
    for method, write, body in writes:
        problem = assert_problem(api.request(method, write, json_body=body, key=token), 403)
        assert "read-only" in str(problem["detail"]), (method, write)
    unchanged = api.get(path).json()
    assert unchanged["enabled"] is True and unchanged["updated_at"] == subscription["updated_at"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v3/portal-sessions", {}),
        ("POST", "/v3/events", {"event_name": "signature_request.done", "data": {}}),
        ("POST", "/v3/events/batch", {"events": []}),
        ("GET", "/v3/openapi-but-not-really", None),
    ],
)
def test_a_portal_token_is_no_api_key(api: ApiClient, method: str, path: str, body: object) -> None:
    token, _ = open_session(api)
    assert_problem(api.request(method, path, json_body=body, key=token), 403)


def test_an_api_key_has_no_portal_session(api: ApiClient) -> None:
    assert_problem(api.get("/v3/portal-sessions/current"), 404)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"expires_in": 59}, "expires_in"),
        ({"expires_in": 86_401}, "expires_in"),
        ({"expires_in": "3600"}, "expires_in"),
        ({"read_only": "yes"}, "read_only"),
        ({"team_id": "someone-else"}, "team_id"),
    ],
)
def test_bad_session_requests_are_422(api: ApiClient, body: dict[str, object], param: str) -> None:
    assert_problem(api.post("/v3/portal-sessions", body), 422, param)


def test_tokens_are_stored_hashed_and_refused_once_expired(stack: LocalStack, api: ApiClient) -> None:
    token, _ = open_session(api, expires_in=60)
    items = table(get_settings().api_keys_table).scan()["Items"]
    assert token not in repr(items)
    assert any(item["key_hash"] == hash_key(token) for item in items)

    expired = "hrp_expired_" + "x" * 40
    store = wiring.api_key_store(get_settings())
    store.add_portal_token(
        hash_key(expired), "team-a", read_only=False, expires_at=int(time.time()) - 1, opened_by=None
    )
    assert_problem(api.get("/v3/webhooks", key=expired), 401)


def page(transport: Callable[..., ApiResponse], path: str) -> ApiResponse:
    return transport("GET", path, {}, b"")


def test_the_page_is_public_static_and_locked_down(transport: Callable[..., ApiResponse]) -> None:
    html = page(transport, "/portal")
    assert html.status == 200
    assert html.content_type.startswith("text/html")
    policy = html.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert html.headers["x-frame-options"] == "DENY"
    assert html.headers["referrer-policy"] == "no-referrer"
    assert html.headers["x-content-type-options"] == "nosniff"
    text = html.body.decode()
    # No inline script: every script element loads a file, and no element has an event handler attribute.
    assert re.findall(r"<script\b[^>]*>", text) == ['<script src="portal/portal.js" defer>']
    assert not re.search(r"\son[a-z]+\s*=", text)
    script = page(transport, "/portal/portal.js")
    assert script.status == 200 and script.content_type.startswith("text/javascript")
    assert "innerHTML" not in script.body.decode() and "insertAdjacentHTML" not in script.body.decode()
    assert page(transport, "/portal/portal.css").content_type.startswith("text/css")
    # An icon of its own, public as the page is: the browser asks for no /favicon.ico (a 401 on every load).
    assert '<link rel="icon" href="portal/favicon.svg" type="image/svg+xml">' in text
    icon = page(transport, "/portal/favicon.svg")
    assert icon.status == 200 and icon.content_type == "image/svg+xml" and icon.body.startswith(b"<svg")
    assert_problem(page(transport, "/portal/secrets.txt"), 404)
    assert_problem(page(transport, "/portal/..%2Fcatalog.json"), 404)


def test_platforms_may_allow_framing(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    # Set before the stack starts: like a deployment's, the functions' settings are read once.
    monkeypatch.setenv("HOOKRELAY_PORTAL_FRAME_ANCESTORS", "https://app.example.com  https://*.example.org")
    framed = page(request.getfixturevalue("transport"), "/portal")
    policy = framed.headers["content-security-policy"]
    assert "frame-ancestors https://app.example.com https://*.example.org;" in policy
    assert "x-frame-options" not in framed.headers


def api_event_with_context(context: dict[str, object]) -> dict[str, object]:
    """POST /v3/events as API Gateway hands it over after the authorizer said `context`."""
    event = sample_event("api-publish-event")
    event["requestContext"]["authorizer"]["lambda"] = context
    return event


@pytest.mark.parametrize(
    "context",
    [
        # The shape before scopes, as a gateway passing context values as strings hands it over: it read
        # as a full API key ("true" is not True), and the event was published (202).
        {"team_id": "acme", "portal": "true", "read_only": "false", "expires_at": "4102444800"},
        {"team_id": "acme", "portal": True, "read_only": False, "expires_at": 4102444800},
        {"team_id": "acme", "scope": "everything", "expires_at": 0},
    ],
)
def test_an_authorizer_context_that_does_not_parse_is_refused(stack: LocalStack, context: dict[str, object]) -> None:
    answer = stack.invoke("ApiFunction", api_event_with_context(context))
    assert answer["statusCode"] == 401, answer


@pytest.mark.parametrize(
    "context",
    [
        {"team_id": "acme", "scope": "portal", "expires_at": 4102444800},
        {"team_id": "acme", "scope": "portal", "expires_at": "4102444800"},
    ],
)
def test_a_portal_scope_cannot_publish_whichever_way_its_values_come(
    stack: LocalStack, context: dict[str, object]
) -> None:
    answer = stack.invoke("ApiFunction", api_event_with_context(context))
    assert answer["statusCode"] == 403, answer


@pytest.fixture
def uncached_api(stack: LocalStack, api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> ApiClient:
    """`api` with an authorizer that remembers no lookup (read when the handler loads, at its first request)."""
    monkeypatch.setenv("HOOKRELAY_API_KEY_CACHE_SECONDS", "0")
    get_settings.cache_clear()
    return api


@pytest.mark.parametrize("read_only", [False, True])
def test_signing_out_ends_the_session(uncached_api: ApiClient, read_only: bool) -> None:
    api = uncached_api
    token, _ = open_session(api, read_only=read_only)
    other, _ = open_session(api)
    assert api.get("/v3/webhooks", key=token).status == 200
    signed_out = api.delete("/v3/portal-sessions/current", key=token)
    assert signed_out.status == 204, signed_out.body
    assert_problem(api.get("/v3/webhooks", key=token), 401)
    assert_problem(api.delete("/v3/portal-sessions/current", key=token), 401)
    assert api.get("/v3/webhooks", key=other).status == 200
    assert api.get("/v3/webhooks").status == 200


def test_an_api_key_cannot_sign_out(uncached_api: ApiClient) -> None:
    assert_problem(uncached_api.delete("/v3/portal-sessions/current"), 404)
    assert uncached_api.get("/v3/webhooks").status == 200


def test_a_portal_session_ends_with_the_key_that_opened_it(
    uncached_api: ApiClient, api_key: Callable[[str], str]
) -> None:
    api = uncached_api
    issuing_key = api_key("team-a")
    token, _ = open_session(ApiClient(api.transport, issuing_key))
    kept, _ = open_session(api)
    store = wiring.api_key_store(get_settings())
    assert api.post("/v3/webhooks", webhook(), key=token).status == 201

    assert store.remove("team-a", hash_key(issuing_key)[:12])
    assert_problem(api.get("/v3/webhooks", key=issuing_key), 401)
    # Before, the session went on reading, rotating secrets and creating subscriptions for its 24 h.
    assert_problem(api.get("/v3/webhooks", key=token), 401)
    assert_problem(api.post("/v3/webhooks", webhook(), key=token), 401)
    assert api.get("/v3/webhooks", key=kept).status == 200
