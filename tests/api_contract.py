"""The subscriptions API contract (SPEC §2), run by the integration layer (handlers in-process
against moto) and by the e2e layer (the local stack over HTTP) alike.

Each test module that imports these tests provides two fixtures: `api`, a client for one team,
and `other_api`, a client for a second team. The stack refuses private endpoints in both.
"""

import base64
import uuid
from typing import Any

import pytest

from api_client import NO_KEY, ApiClient, ApiResponse
from hookrelay.pagination import encode_cursor
from hookrelay.signing import signing_key

PROBLEM = "application/problem+json"
PUBLIC_ENDPOINT = "https://hooks.example.com/yousign"


def webhook(**fields: object) -> dict[str, object]:
    return {"endpoint": PUBLIC_ENDPOINT, "subscribed_events": ["signature_request.done"], **fields}


def assert_problem(response: ApiResponse, status: int, *param_names: str) -> dict[str, Any]:
    assert response.status == status, response.body
    assert response.content_type.startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    names = [param["name"] for param in problem.get("invalid_params", [])]
    for name in param_names:
        assert name in names, problem
    return problem


def test_create_then_read_update_list_delete(api: ApiClient) -> None:
    created = api.post(
        "/v3/webhooks",
        webhook(description="Signed contracts", scope=["public_api"], workspace=["ws-1", "ws-2"]),
    )
    assert created.status == 201, created.body
    subscription = created.json()
    assert uuid.UUID(subscription["id"])
    assert subscription["secret_key"].startswith("whsec_")
    assert len(signing_key(subscription["secret_key"])) == 32
    assert subscription | {"id": None, "secret_key": None, "created_at": None, "updated_at": None} == {
        "id": None,
        "secret_key": None,
        "created_at": None,
        "updated_at": None,
        "endpoint": PUBLIC_ENDPOINT,
        "description": "Signed contracts",
        "sandbox": False,
        "enabled": True,
        "auto_retry": True,
        "subscribed_events": ["signature_request.done"],
        "scopes": ["public_api"],
        "workspaces": ["ws-1", "ws-2"],
        "payload_format": "yousign",
        "content_type": "application/json",
        "headers": {},
        "sensitive_headers": [],
        "delivery_format": "yousign",
        "disabled_reason": None,
        "failing_since": None,
        "signature_scheme": "hmac",
        "public_key": None,
        "rate_limit": None,
    }
    path = f"/v3/webhooks/{subscription['id']}"

    read = api.get(path)
    assert read.status == 200
    assert "secret_key" not in read.json()
    assert read.json() == {key: value for key, value in subscription.items() if key != "secret_key"}

    updated = api.patch(path, {"enabled": False, "subscribed_events": ["*"], "description": None})
    assert updated.status == 200, updated.body
    assert updated.json()["enabled"] is False
    assert updated.json()["subscribed_events"] == ["*"]
    assert updated.json()["description"] is None
    assert updated.json()["endpoint"] == PUBLIC_ENDPOINT
    assert updated.json()["updated_at"] >= subscription["updated_at"]
    assert api.get(path).json() == updated.json()

    listed = api.get("/v3/webhooks")
    assert listed.status == 200
    assert listed.json() == {"data": [updated.json()], "meta": {"next_cursor": None}}

    deleted = api.delete(path)
    assert deleted.status == 204
    assert deleted.body == b""
    assert_problem(api.get(path), 404)
    assert_problem(api.delete(path), 404)
    assert api.get("/v3/webhooks").json()["data"] == []


def test_given_secret_is_kept_and_never_listed(api: ApiClient) -> None:
    secret = "a-custom-secret-of-some-length"
    created = api.post("/v3/webhooks", webhook(secret_key=secret))
    assert created.status == 201
    assert created.json()["secret_key"] == secret
    assert secret not in api.get("/v3/webhooks").body.decode()
    assert secret not in api.get(f"/v3/webhooks/{created.json()['id']}").body.decode()


def test_subnoto_form_and_chat_formats(api: ApiClient) -> None:
    form = api.post(
        "/v3/webhooks",
        webhook(
            subscribed_events=["ENVELOPE_SIGNED", "ENVELOPE_COMPLETED"],
            payload_format="subnoto",
            content_type="application/x-www-form-urlencoded",
        ),
    )
    assert form.status == 201, form.body
    assert form.json()["delivery_format"] == "subnoto"
    slack = api.post("/v3/webhooks", webhook(endpoint="https://hooks.slack.com/services/T0/B0/x"))
    assert slack.json()["delivery_format"] == "slack"
    discord = api.post("/v3/webhooks", webhook(endpoint="https://discord.com/api/webhooks/1/abc"))
    assert discord.json()["delivery_format"] == "discord"
    # Discord's Slack-compatible endpoint takes Slack's message; its GitHub-compatible one, GitHub's events only.
    discord_as_slack = api.post("/v3/webhooks", webhook(endpoint="https://discord.com/api/webhooks/1/abc/slack"))
    assert discord_as_slack.json()["delivery_format"] == "slack"
    assert discord_as_slack.json()["endpoint"] == "https://discord.com/api/webhooks/1/***/slack"
    as_github = api.post("/v3/webhooks", webhook(endpoint="https://discord.com/api/webhooks/1/abc/github"))
    assert "GitHub's events only" in assert_problem(as_github, 422, "endpoint")["invalid_params"][0]["reason"]


def test_list_pages_with_cursor(api: ApiClient) -> None:
    ids = {api.post("/v3/webhooks", webhook()).json()["id"] for _ in range(5)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = api.get("/v3/webhooks?limit=2" + (f"&after={cursor}" if cursor else ""))
        assert page.status == 200, page.body
        assert len(page.json()["data"]) <= 2
        seen.extend(item["id"] for item in page.json()["data"])
        pages += 1
        cursor = page.json()["meta"]["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(ids)


def test_custom_headers_are_kept_shown_and_replaced_by_patch(api: ApiClient) -> None:
    headers = {"Authorization": "Bearer receiver-token-for-tests", "X-Tenant": "acme"}
    # A credential's value is write-only: `***` and its last 4 characters on every read.
    shown = {"Authorization": "***ests", "X-Tenant": "acme"}
    created = api.post("/v3/webhooks", webhook(headers=headers))
    assert created.status == 201, created.body
    assert created.json()["headers"] == shown
    path = f"/v3/webhooks/{created.json()['id']}"
    assert api.get(path).json()["headers"] == shown
    assert api.get("/v3/webhooks").json()["data"][0]["headers"] == shown

    assert api.patch(path, {"description": "unchanged headers"}).json()["headers"] == shown
    # Written back as shown (read, edit, write), the stored value stays: still shown as it was.
    edited = {**shown, "X-Tenant": "initech"}
    assert api.patch(path, {"headers": edited}).json()["headers"] == edited
    assert api.get(path).json()["headers"] == edited
    assert api.patch(path, {"headers": {"X-Tenant": "globex"}}).json()["headers"] == {"X-Tenant": "globex"}
    assert api.get(path).json()["headers"] == {"X-Tenant": "globex"}
    assert api.patch(path, {"headers": {}}).json()["headers"] == {}


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("Authorization", "Bearer rcv_live_0123456789abcdef", "***cdef"),
        ("cookie", "session=0123456789abcdef", "***cdef"),
        ("X-Api-Key", "k-0123456789abcdef", "***cdef"),
        ("X-Auth-Token", "short", "***"),
        ("X-Client-SECRET", "0123456789abcdef", "***cdef"),
        ("X-Body-Signature", "sig-0123456789abcdef", "***cdef"),
        ("X-Password", "hunter2-hunter2", "***ter2"),
        ("X-Tenant", "acme-0123456789", "acme-0123456789"),
    ],
)
def test_credentials_in_custom_headers_are_write_only_by_their_name(
    api: ApiClient, name: str, value: str, shown: str
) -> None:
    created = api.post("/v3/webhooks", webhook(headers={name: value}))
    assert created.status == 201, created.body
    assert created.json()["headers"] == {name: shown}
    assert api.get(f"/v3/webhooks/{created.json()['id']}").json()["headers"] == {name: shown}
    if shown != value:
        assert value not in created.body.decode()


def test_a_header_the_tenant_marks_sensitive_is_write_only(api: ApiClient) -> None:
    headers = {"X-Client-Id": "client-0123456789abcdef", "X-Tenant": "acme"}
    created = api.post("/v3/webhooks", webhook(headers=headers, sensitive_headers=["x-client-id"]))
    assert created.status == 201, created.body
    assert created.json()["headers"] == {"X-Client-Id": "***cdef", "X-Tenant": "acme"}
    assert created.json()["sensitive_headers"] == ["x-client-id"]
    path = f"/v3/webhooks/{created.json()['id']}"
    assert_problem(api.patch(path, {"sensitive_headers": ["Bad Name"]}), 422, "sensitive_headers.Bad Name")


def refused_header_names(response: ApiResponse) -> list[str]:
    return [param["name"] for param in assert_problem(response, 422)["invalid_params"]]


def test_a_header_is_no_longer_sensitive_only_with_a_value_written_for_it(api: ApiClient) -> None:
    """Before, a PATCH of sensitive_headers alone showed the value stored while it was write-only."""
    secret = "client-0123456789abcdef"
    headers = {"X-Client-Id": secret, "X-Tenant": "acme"}
    shown = {"X-Client-Id": "***cdef", "X-Tenant": "acme"}

    def marked() -> str:
        created = api.post("/v3/webhooks", webhook(headers=headers, sensitive_headers=["X-Client-Id"]))
        return f"/v3/webhooks/{created.json()['id']}"

    path = marked()
    # Left out, or written back masked: the stored value, which the client never saw, would be shown.
    unwritten: list[dict[str, object]] = [
        {"sensitive_headers": []},
        {"sensitive_headers": ["X-Tenant"], "headers": shown},
    ]
    for patch in unwritten:
        refused = api.patch(path, patch)
        assert secret not in refused.body.decode()
        assert refused_header_names(refused) == ["headers.X-Client-Id"]
        assert api.get(path).json()["headers"] == shown
    written = {"X-Client-Id": "client-public-id", "X-Tenant": "acme"}
    unmarked = api.patch(path, {"sensitive_headers": [], "headers": written})
    assert unmarked.status == 200, unmarked.body
    assert unmarked.json()["headers"] == written
    removed = api.patch(marked(), {"sensitive_headers": [], "headers": {"X-Tenant": "acme"}})
    assert removed.status == 200, removed.body
    assert removed.json()["headers"] == {"X-Tenant": "acme"}


def test_an_endpoint_moved_to_another_origin_takes_no_write_only_value_along(api: ApiClient) -> None:
    """Before, a PATCH of the endpoint alone sent the stored credentials to the new host."""
    token = "Bearer rcv_live_0123456789abcdef"
    headers = {"Authorization": token, "X-Client-Id": "client-0123456789abcdef", "X-Tenant": "acme"}
    shown = {"Authorization": "***cdef", "X-Client-Id": "***cdef", "X-Tenant": "acme"}
    created = api.post("/v3/webhooks", webhook(headers=headers, sensitive_headers=["X-Client-Id"]))
    path = f"/v3/webhooks/{created.json()['id']}"
    other_hosts = ("https://elsewhere.example.com/yousign", "https://hooks.example.com:8443/yousign")
    # Left out, or written back masked: values the client never saw would go to a host they were not for.
    unwritten: list[dict[str, object]] = [{"endpoint": other} for other in other_hosts]
    unwritten.append({"endpoint": other_hosts[0], "headers": shown})
    for patch in unwritten:
        refused = api.patch(path, patch)
        assert token not in refused.body.decode()
        assert refused_header_names(refused) == ["headers.Authorization", "headers.X-Client-Id"]
        assert api.get(path).json()["endpoint"] == PUBLIC_ENDPOINT
    # The same origin (a host name's case is no part of it): the values stay.
    same_origin = api.patch(path, {"endpoint": "https://HOOKS.example.com/moved"})
    assert same_origin.status == 200, same_origin.body
    assert same_origin.json()["headers"] == shown
    rewritten = {**headers, "Authorization": "Bearer for-elsewhere-0001"}
    moved = api.patch(path, {"endpoint": other_hosts[0], "headers": rewritten})
    assert moved.status == 200, moved.body
    assert moved.json()["headers"] == {**shown, "Authorization": "***0001"}
    removed = api.patch(path, {"endpoint": other_hosts[1], "headers": {"X-Tenant": "acme"}})
    assert removed.status == 200, removed.body
    assert removed.json()["headers"] == {"X-Tenant": "acme"}


@pytest.mark.parametrize(
    ("endpoint", "secret", "shown", "edited"),
    [
        (
            "https://discord.com/api/webhooks/1234567890/DISCORD-TOKEN-SECRET-abcdef",
            "DISCORD-TOKEN-SECRET-abcdef",
            "https://discord.com/api/webhooks/1234567890/***",
            "https://discord.com/api/webhooks/9999999999/***",
        ),
        (
            "https://hooks.slack.com/services/T000/B000/SLACKSECRETxxxxxxxxxxxx",
            "SLACKSECRETxxxxxxxxxxxx",
            "https://hooks.slack.com/services/T000/B000/***",
            "https://hooks.slack.com/services/T000/B001/***",
        ),
        (
            "https://hooks.example.com/in?token=QUERY-SECRET-123456",
            "QUERY-SECRET-123456",
            "https://hooks.example.com/in?token=***",
            "https://hooks.example.com/moved?token=***",
        ),
    ],
)
def test_a_secret_in_the_endpoint_url_is_never_shown(
    api: ApiClient, endpoint: str, secret: str, shown: str, edited: str
) -> None:
    """Before, a read (a read-only portal link's too) showed a Slack or Discord webhook's token, or a
    `?token=` value, in full: the same secret sent as a custom header is write-only."""
    created = api.post("/v3/webhooks", webhook(endpoint=endpoint))
    assert created.status == 201, created.body
    path = f"/v3/webhooks/{created.json()['id']}"
    answers = [created, api.get(path), api.get("/v3/webhooks"), api.patch(path, {"description": "renamed"})]
    for answer in answers:
        assert secret not in answer.body.decode(), answer.body
    assert api.get(path).json()["endpoint"] == shown
    # Written back as shown (read, edit, write), the stored endpoint stays.
    written_back = api.patch(path, {"endpoint": shown, "enabled": True})
    assert written_back.status == 200, written_back.body
    assert written_back.json()["endpoint"] == shown
    # Another URL with the mask where the secret goes would store `***` as the secret: write the full URL.
    refused = api.patch(path, {"endpoint": edited})
    assert "full URL" in assert_problem(refused, 422, "endpoint")["invalid_params"][0]["reason"]
    assert secret not in refused.body.decode()
    assert api.get(path).json()["endpoint"] == shown
    assert_problem(api.post("/v3/webhooks", webhook(endpoint=edited)), 422, "endpoint")


@pytest.mark.parametrize(
    ("headers", "param"),
    [
        ({"Host": "evil.example.com"}, "headers.Host"),
        ({"webhook-signature": "v1,forged"}, "headers.webhook-signature"),
        ({"X-Yousign-Signature-256": "sha256=forged"}, "headers.X-Yousign-Signature-256"),
        ({"x-webhook-id": "forged"}, "headers.x-webhook-id"),
        ({"X-Hookrelay-Test": "false"}, "headers.X-Hookrelay-Test"),
        ({"Content-Length": "0"}, "headers.Content-Length"),
        ({"Transfer-Encoding": "chunked"}, "headers.Transfer-Encoding"),
        ({"User-Agent": "not-hookrelay"}, "headers.User-Agent"),
        ({"X-Injected": "a\r\nHost: evil.example.com"}, "headers.X-Injected"),
        ({"Bad Name": "1"}, "headers.Bad Name"),
        ({"X-Long": "v" * 1025}, "headers.X-Long"),
        ({"X-A": "1", "x-a": "2"}, "headers.x-a"),
        ({f"X-H{n}": "1" for n in range(21)}, "headers"),
        ({"X-Number": 1}, "headers.X-Number"),
        (["X-A: 1"], "headers"),
    ],
)
def test_refused_custom_headers_are_422_naming_the_header(api: ApiClient, headers: object, param: str) -> None:
    assert_problem(api.post("/v3/webhooks", webhook(headers=headers)), 422, param)
    path = f"/v3/webhooks/{api.post('/v3/webhooks', webhook(headers={'X-Tenant': 'acme'})).json()['id']}"
    assert_problem(api.patch(path, {"headers": headers}), 422, param)
    assert api.get(path).json()["headers"] == {"X-Tenant": "acme"}


def test_custom_authorization_and_endpoint_credentials_are_422(api: ApiClient) -> None:
    with_credentials = "https://user:pass@hooks.example.com/yousign"
    assert_problem(
        api.post("/v3/webhooks", webhook(endpoint=with_credentials, headers={"Authorization": "Bearer t"})),
        422,
        "headers.Authorization",
    )
    path = f"/v3/webhooks/{api.post('/v3/webhooks', webhook(headers={'Authorization': 'Bearer t'})).json()['id']}"
    assert_problem(api.patch(path, {"endpoint": with_credentials}), 422, "headers.Authorization")


def test_a_portal_session_signs_out_once(api: ApiClient) -> None:
    opened = api.post("/v3/portal-sessions", {"read_only": True})
    assert opened.status == 201, opened.body
    token = str(opened.json()["url"]).split("#token=", 1)[1]
    assert api.delete("/v3/portal-sessions/current", key=token).status == 204
    # Ended: refused by an authorizer that looks the token up, else no longer a session to end.
    assert api.delete("/v3/portal-sessions/current", key=token).status in (401, 404)
    assert_problem(api.delete("/v3/portal-sessions/current"), 404)


def test_event_types_catalog(api: ApiClient) -> None:
    response = api.get("/v3/webhook-event-types")
    assert response.status == 200
    types = response.json()["data"]
    names = [event_type["name"] for event_type in types]
    assert len(names) == len(set(names)) == 34
    assert {"signature_request.done", "signer.done", "electronic_seal.error", "ENVELOPE_SIGNED"} <= set(names)
    assert all(event_type["description"] and event_type["sample"] for event_type in types)
    assert response.json()["meta"] == {"next_cursor": None}
    signer_done = next(event_type for event_type in types if event_type["name"] == "signer.done")
    schema = signer_done["schema"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) == {"signature_request", "signer"}
    assert schema["properties"]["signer"]["required"] == ["id", "status"]
    assert all(event_type["schema"]["type"] == "object" for event_type in types)


def test_an_event_whose_data_breaks_its_schema_is_accepted_when_validation_is_off(api: ApiClient) -> None:
    # HOOKRELAY_VALIDATE_EVENT_DATA is false by default: producers written before the schemas keep working.
    response = api.post("/v3/events", {"event_name": "signer.done", "data": {"signer": {"status": 3}}})
    assert response.status == 202, response.body


def test_openapi_document_and_swagger_ui_are_public(api: ApiClient) -> None:
    document = api.get("/v3/openapi.json", key=NO_KEY)
    assert document.status == 200
    spec = document.json()
    assert spec["openapi"].startswith("3.")
    assert {"/v3/webhooks", "/v3/webhooks/{webhook_id}", "/v3/webhook-event-types"} <= set(spec["paths"])
    assert set(spec["paths"]["/v3/webhooks/{webhook_id}"]) == {"get", "patch", "delete"}
    assert set(spec["paths"]["/v3/portal-sessions"]) == {"post"}
    assert set(spec["paths"]["/v3/portal-sessions/current"]) == {"get", "delete"}
    assert set(spec["paths"]["/v3/portal-sessions/current"]["delete"]["responses"]) >= {"204", "401", "404"}
    schemas = spec["components"]["schemas"]
    listed = {name.removeprefix("EventData.") for name in schemas if name.startswith("EventData.")}
    assert len(listed) == 34 and {"signer.done", "ENVELOPE_SIGNED"} <= listed
    assert schemas["EventData.signer.done"]["required"] == ["signature_request", "signer"]
    assert "schema" in schemas["EventType"]["properties"]
    assert "headers" in schemas["SubscriptionSettings"]["properties"]
    docs = api.get("/v3/docs", key=NO_KEY)
    assert docs.status == 200
    assert docs.content_type.startswith("text/html")
    assert b"swagger" in docs.body.lower()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"subscribed_events": ["signer.done"]}, "endpoint"),
        (webhook(endpoint=42), "endpoint"),
        (webhook(sandbox="yes"), "sandbox"),
        (webhook(enabled=1), "enabled"),
        (webhook(subscribed_events="signer.done"), "subscribed_events"),
        (webhook(subscribed_events=[]), "subscribed_events"),
        (webhook(subscribed_events=["signer.finished"]), "subscribed_events"),
        (webhook(subscribed_events=["*", "signer.done"]), "subscribed_events"),
        (webhook(scopes=[]), "scopes"),
        (webhook(scopes=["*", "app"]), "scopes"),
        (webhook(workspaces=["ws-1", "*"]), "workspaces"),
        (webhook(description="x" * 256), "description"),
        (webhook(secret_key="short"), "secret_key"),
        (webhook(secret_key="whsec_not base64!!!!"), "secret_key"),
        (webhook(secret_key="x" * 23), "secret_key"),
        (webhook(secret_key="whsec_" + "a" * 30 + "=="), "secret_key"),
        (webhook(secret_key="whsec_" + "a" * 88), "secret_key"),
        (webhook(payload_format="xml"), "payload_format"),
        (webhook(signature_scheme="rsa"), "signature_scheme"),
        (webhook(signature_scheme=None), "signature_scheme"),
        (webhook(rate_limit=0), "rate_limit"),
        (webhook(rate_limit=1001), "rate_limit"),
        (webhook(rate_limit="5"), "rate_limit"),
        (webhook(rate_limit=2.5), "rate_limit"),
        (webhook(rate_limit=True), "rate_limit"),
        (webhook(content_type="application/x-www-form-urlencoded"), ""),
        (webhook(unknown_field=True), "unknown_field"),
        (webhook(endpoint="ftp://example.com/hook"), "endpoint"),
        (webhook(endpoint="not a url"), "endpoint"),
        ([webhook()], "body"),
    ],
)
def test_invalid_subscription_is_422(api: ApiClient, body: object, param: str) -> None:
    problem = assert_problem(api.post("/v3/webhooks", body), 422)
    if param:
        assert param in [item["name"] for item in problem["invalid_params"]], problem


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://hooks.example.com/plain-http",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://10.0.0.8/hook",
        "https://192.168.1.20/hook",
        "https://100.64.0.1/hook",
        "https://2130706433/hook",
        "https://0x7f000001/hook",
        "https://0177.0.0.1/hook",
        "https://127.1/hook",
        "https://public@127.0.0.1/hook",
        "https://0.0.0.0/hook",
        "https://[fec0::1]/hook",
        "https://[3fff::1]/hook",
        "https://hooks.example.com:22/hook",
        "https://hooks.example.com:80/hook",
        "https://hooks.example.com:0/hook",
        "https://hooks.example.com:1023/hook",
    ],
)
def test_private_plain_or_low_port_endpoint_is_refused(api: ApiClient, endpoint: str) -> None:
    problem = assert_problem(api.post("/v3/webhooks", webhook(endpoint=endpoint)), 422, "endpoint")
    assert "endpoint" in str(problem)
    existing = api.post("/v3/webhooks", webhook()).json()["id"]
    assert_problem(api.patch(f"/v3/webhooks/{existing}", {"endpoint": endpoint}), 422, "endpoint")
    assert api.get(f"/v3/webhooks/{existing}").json()["endpoint"] == PUBLIC_ENDPOINT


def test_unresolvable_public_name_is_accepted(api: ApiClient) -> None:
    # A name may not resolve yet; it is checked again at every send.
    assert api.post("/v3/webhooks", webhook(endpoint="https://not-yet.example.invalid/hook")).status == 201


def test_malformed_json_is_400(api: ApiClient) -> None:
    response = api.post("/v3/webhooks", body=b'{"endpoint": ', headers={"Content-Type": "application/json"})
    assert_problem(response, 400)


def test_form_body_is_415(api: ApiClient) -> None:
    response = api.post(
        "/v3/webhooks", body=b"endpoint=https://x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_problem(response, 415)


def test_oversize_body_is_413(api: ApiClient) -> None:
    body = webhook(description="x" * 10, padding="y" * (256 * 1024))
    assert_problem(api.post("/v3/webhooks", body), 413)


@pytest.mark.parametrize("key", [NO_KEY, "hr_not_a_real_key", "Basic dXNlcjpwYXNz"])
def test_missing_or_invalid_key_is_401(api: ApiClient, key: str) -> None:
    headers = {"Authorization": key} if key.startswith("Basic") else None
    response = api.get("/v3/webhooks", key=key, headers=headers)
    assert_problem(response, 401)
    assert response.headers.get("www-authenticate") == "Bearer"
    assert_problem(api.post("/v3/webhooks", body=b"{", headers={"Content-Type": "application/json"}, key=key), 401)


def test_other_team_ids_are_404(api: ApiClient, other_api: ApiClient) -> None:
    theirs = other_api.post("/v3/webhooks", webhook()).json()["id"]
    path = f"/v3/webhooks/{theirs}"
    assert_problem(api.get(path), 404)
    assert_problem(api.patch(path, {"enabled": False}), 404)
    assert_problem(api.delete(path), 404)
    assert api.get("/v3/webhooks").json()["data"] == []
    assert other_api.get(path).json()["enabled"] is True


@pytest.mark.parametrize("webhook_id", ["not-a-uuid", "x" * 3000, "9CFB8355-98B9-4CB9-ACBF-75638AF78F5C", "%00"])
def test_ids_that_cannot_exist_are_404(api: ApiClient, webhook_id: str) -> None:
    assert_problem(api.get(f"/v3/webhooks/{webhook_id}"), 404)
    assert_problem(api.patch(f"/v3/webhooks/{webhook_id}", {"enabled": False}), 404)
    assert_problem(api.delete(f"/v3/webhooks/{webhook_id}"), 404)


def test_body_that_is_not_utf8_is_400(api: ApiClient) -> None:
    response = api.post("/v3/webhooks", body=b'{"endpoint": "\xff\xfe"}', headers={"Content-Type": "application/json"})
    assert_problem(response, 400)


def test_unknown_route_404_and_wrong_method_405(api: ApiClient) -> None:
    assert_problem(api.get("/v3/nothing-here"), 404)
    not_allowed = api.request("PUT", "/v3/webhooks", json_body=webhook())
    assert_problem(not_allowed, 405)
    assert not_allowed.headers.get("allow") == "GET, POST"
    assert_problem(api.request("POST", f"/v3/webhooks/{uuid.uuid4()}", json_body={}), 405)


FOREIGN_CURSORS = ["after=bm90LWEtY3Vyc29y", "after=%%%", "after=" + encode_cursor({"id": "x" * 3000})]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "limit=1.5", *FOREIGN_CURSORS])
def test_bad_list_parameters_are_422(api: ApiClient, query: str) -> None:
    assert_problem(api.get(f"/v3/webhooks?{query}"), 422)


def test_patch_rejects_nulls_and_bad_combinations(api: ApiClient) -> None:
    path = f"/v3/webhooks/{api.post('/v3/webhooks', webhook()).json()['id']}"
    assert_problem(api.patch(path, {"endpoint": None}), 422, "endpoint")
    assert_problem(api.patch(path, {"subscribed_events": ["*", "signer.done"]}), 422, "subscribed_events")
    assert_problem(api.patch(path, {"content_type": "application/x-www-form-urlencoded"}), 422)
    assert_problem(api.patch(path, {"id": "another"}), 422, "id")
    assert api.patch(path, {}).status == 200


def test_ed25519_subscription_shows_its_public_key_never_its_private_key(api: ApiClient) -> None:
    created = api.post("/v3/webhooks", webhook(signature_scheme="ed25519"))
    assert created.status == 201, created.body
    subscription = created.json()
    assert subscription["signature_scheme"] == "ed25519"
    assert len(base64.b64decode(subscription["public_key"].removeprefix("whpk_"))) == 32
    assert subscription["secret_key"].startswith("whsec_")
    path = f"/v3/webhooks/{subscription['id']}"
    read, listed = api.get(path), api.get("/v3/webhooks")
    assert read.json()["public_key"] == listed.json()["data"][0]["public_key"] == subscription["public_key"]
    rotated = api.post(f"{path}/secret/rotate", {})
    assert rotated.status == 200 and rotated.json()["public_key"] not in (None, subscription["public_key"])
    for response in (created, read, listed, rotated):
        assert b"whsk_" not in response.body and b"private_key" not in response.body
    assert api.patch(path, {"signature_scheme": "hmac"}).json()["public_key"] is None
    assert api.post("/v3/webhooks", webhook()).json()["public_key"] is None


def test_rate_limit_is_optional_and_can_be_lifted(api: ApiClient) -> None:
    created = api.post("/v3/webhooks", webhook(rate_limit=5))
    assert created.status == 201, created.body
    assert created.json()["rate_limit"] == 5
    path = f"/v3/webhooks/{created.json()['id']}"
    assert api.patch(path, {"rate_limit": 1000}).json()["rate_limit"] == 1000
    assert api.patch(path, {"rate_limit": None}).json()["rate_limit"] is None
    assert api.get(path).json()["rate_limit"] is None
    assert api.post("/v3/webhooks", webhook()).json()["rate_limit"] is None


def nested_arrays(depth: int) -> str:
    """JSON text of `depth` arrays, each inside the next (two bytes a level, so 100 000 fit in 256 KiB)."""
    return "[" * depth + "]" * depth


def event_nested(depth: int) -> bytes:
    """An event body nested `depth` levels deep, the body object being level 1 and `data` level 2."""
    return f'{{"event_name": "signer.done", "data": {{"items": {nested_arrays(depth - 2)}}}}}'.encode()


def body_routes(api: ApiClient) -> list[tuple[str, str]]:
    """(method, path) of every route that reads a JSON body."""
    base = f"/v3/webhooks/{api.post('/v3/webhooks', webhook()).json()['id']}"
    return [
        ("POST", "/v3/webhooks"),
        ("PATCH", base),
        ("POST", "/v3/events"),
        ("POST", f"{base}/secret/rotate"),
        ("POST", f"{base}/recover"),
        ("POST", f"{base}/test"),
        ("POST", f"{base}/deliveries/{uuid.uuid4()}/retry"),
    ]


def test_an_event_nested_32_levels_deep_is_accepted(api: ApiClient) -> None:
    response = api.post("/v3/events", body=event_nested(32), headers={"Content-Type": "application/json"})
    assert response.status == 202, response.body


@pytest.mark.parametrize("depth", [33, 300, 100_000])
def test_json_nested_deeper_than_32_levels_is_422_on_every_route(api: ApiClient, depth: int) -> None:
    for method, path in body_routes(api):
        response = api.request(method, path, body=event_nested(depth), headers={"Content-Type": "application/json"})
        problem = assert_problem(response, 422, "data")
        assert "32 levels" in str(problem), (method, path, problem)


@pytest.mark.parametrize("secret", ["x" * 23, "whsec_" + "a" * 30 + "==", "whsec_" + "a" * 88, "whsec_c2hvcnQ="])
def test_a_weak_secret_is_422_on_create_update_and_rotate(api: ApiClient, secret: str) -> None:
    assert_problem(api.post("/v3/webhooks", webhook(secret_key=secret)), 422, "secret_key")
    path = f"/v3/webhooks/{api.post('/v3/webhooks', webhook()).json()['id']}"
    assert_problem(api.patch(path, {"secret_key": secret}), 422, "secret_key")
    assert_problem(api.post(f"{path}/secret/rotate", {"secret_key": secret}), 422, "secret_key")
    assert api.post(f"{path}/secret/rotate", {"secret_key": "y" * 24}).status == 200


@pytest.mark.parametrize("field", ["subscribed_events", "scopes", "workspaces"])
def test_lists_hold_at_most_100_entries(api: ApiClient, field: str) -> None:
    entries = ["signer.done"] * 101 if field == "subscribed_events" else [f"entry-{n}" for n in range(101)]
    assert_problem(api.post("/v3/webhooks", webhook(**{field: entries})), 422, field)
    assert api.post("/v3/webhooks", webhook(**{field: entries[:100]})).status == 201
