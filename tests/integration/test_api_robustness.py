"""Whatever a client sends, the API answers with a 4xx problem, never a 5xx (SPEC §2)."""

import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api_client import ApiClient

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    [
        "endpoint",
        "description",
        "secret_key",
        "sandbox",
        "enabled",
        "auto_retry",
        "subscribed_events",
        "scopes",
        "scope",
        "workspaces",
        "workspace",
        "payload_format",
        "content_type",
        "id",
    ]
)
SUBSCRIPTION_LIKE = st.dictionaries(FIELDS, JSON_VALUES, max_size=8)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=SUBSCRIPTION_LIKE | JSON_VALUES)
def test_create_never_fails_with_5xx(api: ApiClient, body: object) -> None:
    response = api.post("/v3/webhooks", body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    assert response.status in (201, 400, 413, 422), response.body
    if response.status != 201:
        assert response.json()["status"] == response.status


@FUZZ
@given(patch=SUBSCRIPTION_LIKE, raw=st.binary(max_size=64))
def test_update_never_fails_with_5xx(api: ApiClient, patch: dict[str, object], raw: bytes) -> None:
    created = api.post("/v3/webhooks", {"endpoint": "https://hooks.example.com/x", "subscribed_events": ["*"]})
    path = f"/v3/webhooks/{created.json()['id']}"
    for body in (json.dumps(patch).encode(), raw):
        response = api.patch(path, body=body, headers={"Content-Type": "application/json"})
        assert response.status in (200, 400, 422), response.body


@FUZZ
@given(path=st.text(max_size=60), query=st.text(max_size=40), method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
def test_any_path_never_fails_with_5xx(api: ApiClient, path: str, query: str, method: str) -> None:
    response = api.request(method, "/v3/" + quote(path) + "?" + quote(query, safe="=&"))
    assert response.status < 500, response.body


OPERATION_FIELDS = st.dictionaries(
    st.sampled_from(["since", "after", "event_name", "secret_key", "status", "limit"]), JSON_VALUES, max_size=4
)


@FUZZ
@given(
    body=OPERATION_FIELDS | JSON_VALUES,
    query=st.dictionaries(st.sampled_from(["status", "limit", "after"]), st.text(max_size=30), max_size=3),
    delivery=st.text(max_size=40),
)
def test_delivery_log_routes_never_fail_with_5xx(
    api: ApiClient, body: object, query: dict[str, str], delivery: str
) -> None:
    created = api.post("/v3/webhooks", {"endpoint": "https://hooks.example.com/x", "subscribed_events": ["*"]})
    base = f"/v3/webhooks/{created.json()['id']}"
    raw = json.dumps(body).encode()
    json_header = {"Content-Type": "application/json"}
    listed = api.get(f"{base}/deliveries?" + "&".join(f"{k}={quote(v)}" for k, v in query.items()))
    assert listed.status in (200, 422), listed.body
    shown = api.get(f"{base}/deliveries/{quote(delivery, safe='')}")
    assert shown.status in (404, 405), shown.body
    for path, expected in (
        (f"{base}/recover", (202, 400, 422)),
        (f"{base}/test", (202, 400, 422)),
        (f"{base}/secret/rotate", (200, 400, 422)),
        (f"{base}/deliveries/{quote(delivery, safe='')}/retry", (400, 404, 405, 422)),
    ):
        response = api.post(path, body=raw, headers=json_header)
        assert response.status in expected, (path, response.body)
