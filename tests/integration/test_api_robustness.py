"""Whatever a client sends, the API answers with a 4xx problem, never a 5xx (SPEC §2)."""

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from receivers import receiver
from records import receiver_endpoint

from api_client import ApiClient
from api_contract import event_nested
from hookrelay.aws import table
from hookrelay.records import delivery_id
from hookrelay.settings import get_settings
from hookrelay_cli.local.stack import LocalStack
from hookrelay_cli.local.workers import QueuePoller
from integration.test_ingest import poll_until_empty

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
        "headers",
        "sensitive_headers",
        "signature_scheme",
        "rate_limit",
        "id",
    ]
)
SUBSCRIPTION_LIKE = st.dictionaries(FIELDS, JSON_VALUES, max_size=8)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def limits_out_of_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests fuzz what a request holds, not how many a team sends (tests/integration/test_team_limits.py):
    150 examples of up to 7 requests each, as fast as the in-process stack answers, passed the template's
    100 writes a second and were answered 429 (read when the API function loads)."""
    monkeypatch.setenv("HOOKRELAY_TEAM_REQUESTS_PER_SECOND", "2500")
    monkeypatch.setenv("HOOKRELAY_TEAM_REQUEST_BURST", "5000")


@FUZZ
@given(body=SUBSCRIPTION_LIKE | JSON_VALUES)
def test_create_never_fails_with_5xx(api: ApiClient, body: object) -> None:
    response = api.post("/v3/webhooks", body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    assert response.status in (201, 400, 413, 422), response.body
    if response.status != 201:
        assert response.json()["status"] == response.status


@FUZZ
@given(patch=SUBSCRIPTION_LIKE, raw=st.binary(max_size=64))
@example(patch={"headers": None}, raw=b"")  # was a 500: the stored headers kept against None
def test_update_never_fails_with_5xx(api: ApiClient, patch: dict[str, object], raw: bytes) -> None:
    created = api.post("/v3/webhooks", {"endpoint": "https://hooks.example.com/x", "subscribed_events": ["*"]})
    assert created.status == 201, created.body
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
    assert created.status == 201, created.body
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


def test_the_deepest_event_accepted_is_delivered_and_its_log_readable(
    to_localhost: LocalStack, api: ApiClient, ingest: QueuePoller
) -> None:
    (delivery,) = to_localhost.queue_pollers_of("DeliveryQueue")
    body = event_nested(32)
    with receiver() as server:
        created = api.post("/v3/webhooks", {"endpoint": receiver_endpoint(server.port), "subscribed_events": ["*"]})
        subscription_id = created.json()["id"]
        published = api.post("/v3/events", body=body, headers={"Content-Type": "application/json"})
        assert published.status == 202, published.body
        poll_until_empty(ingest)
        poll_until_empty(delivery)
        (request,) = server.received
    data = json.loads(body)["data"]
    assert json.loads(request.body)["data"] == data
    event_id = published.json()["event_id"]
    detail = api.get(f"/v3/webhooks/{subscription_id}/deliveries/{delivery_id(event_id, subscription_id)}")
    assert detail.status == 200, detail.body
    assert detail.json()["status"] == "delivered"
    assert json.loads(detail.json()["request"]["body"])["data"] == data


SUBSCRIPTION = b'{"endpoint":"https://hooks.example.com/x","subscribed_events":["*"]}'
DIGITS_PYTHON_WILL_NOT_CONVERT = b"9" * 4301


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v3/events", b'{"event_name":"signature_request.done","data":{"s":"\\ud800"}}'),
        ("/v3/events", b'{"event_name":"signature_request.done","data":{"\\udc00":1}}'),
        ("/v3/events", b'{"event_name":"\\ud800","data":{}}'),
        ("/v3/events", b'{"event_name":"signature_request.done","data":{"n":' + DIGITS_PYTHON_WILL_NOT_CONVERT + b"}}"),
        ("/v3/portal-sessions", b'{"expires_in":' + DIGITS_PYTHON_WILL_NOT_CONVERT + b"}"),
        ("/v3/webhooks", SUBSCRIPTION[:-1] + b',"headers":{"\\ud800":"x"}}'),
        ("/v3/webhooks", SUBSCRIPTION[:-1] + b',"sensitive_headers":["\\udc00"]}'),
    ],
)
def test_json_no_later_step_could_read_is_400_not_a_500(api: ApiClient, path: str, body: bytes) -> None:
    # Both were 500s: a lone surrogate escape failed where the body was encoded again (and the error's
    # text logged every other field sent, an endpoint's password included), and Python refused to
    # convert the integer after the body had been let in.
    response = api.post(path, body=body, headers={"Content-Type": "application/json"})
    assert response.status == 400, response.body
    assert response.json()["detail"].startswith("The request body is not valid JSON")


BEYOND_A_DOUBLE = "a number is beyond ±1.8e308, the range of a double"
EVENT_WITH_AMOUNT = b'{"event_name":"signature_request.done","data":{"amount":%s}}'


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        *(
            ("/v3/events", EVENT_WITH_AMOUNT % token, f"{token.decode()} is not a JSON number")
            for token in (b"NaN", b"Infinity", b"-Infinity")
        ),
        *(
            ("/v3/events", EVENT_WITH_AMOUNT % number, BEYOND_A_DOUBLE)
            for number in (b"1e400", b"-1e400", b"2" + b"0" * 308, b"-" + b"9" * 400)
        ),
        ("/v3/events/batch", b'{"events":[%s]}' % (EVENT_WITH_AMOUNT % b"1e400"), BEYOND_A_DOUBLE),
        ("/v3/portal-sessions", b'{"expires_in":NaN}', "NaN is not a JSON number"),
        ("/v3/webhooks", SUBSCRIPTION[:-1] + b',"rate_limit":1E999}', BEYOND_A_DOUBLE),
    ],
)
def test_a_number_json_cannot_carry_is_400_naming_it(api: ApiClient, path: str, body: bytes, named: str) -> None:
    # Events holding them were 202s: Python's parser read them, and the receiver got null in their place.
    response = api.post(path, body=body, headers={"Content-Type": "application/json"})
    assert response.status == 400, response.body
    assert response.json()["detail"].startswith(f"The request body is not valid JSON: {named}")


def test_an_escaped_surrogate_pair_is_one_character_and_accepted(api: ApiClient) -> None:
    body = b'{"event_name":"signature_request.done","data":{"note":"\\ud83d\\ude00"}}'
    assert api.post("/v3/events", body=body, headers={"Content-Type": "application/json"}).status == 202


@pytest.mark.parametrize(
    "content_type", ["Application/JSON", "application/json; charset=UTF-8", "application/merge-patch+json"]
)
def test_every_json_media_type_the_api_lets_in_is_read_as_json(api: ApiClient, content_type: str) -> None:
    # Were 500s: the API let them in, then the resolver refused anything not spelled application/json.
    created = api.post("/v3/webhooks", body=SUBSCRIPTION, headers={"Content-Type": content_type})
    assert created.status == 201, created.body
    patched = api.patch(
        f"/v3/webhooks/{created.json()['id']}", body=b'{"description":"x"}', headers={"Content-Type": content_type}
    )
    assert patched.status == 200, patched.body
    assert patched.json()["description"] == "x"


@pytest.mark.parametrize("event_time", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", -5])
def test_an_event_time_outside_1970_to_9999_in_utc_is_422(api: ApiClient, event_time: object) -> None:
    response = api.post("/v3/events", {"event_name": "signature_request.done", "data": {}, "event_time": event_time})
    assert response.status == 422, response.body
    assert response.json()["invalid_params"] == [
        {"name": "event_time", "reason": "is not a time between 1970 and 9999"}
    ]


def test_a_subscription_a_later_rule_refuses_is_listed_read_and_refused_by_name_when_written(api: ApiClient) -> None:
    created = api.post(
        "/v3/webhooks", {"endpoint": "https://discord.com/api/webhooks/1/DISCORD-TOKEN", "subscribed_events": ["*"]}
    )
    assert created.status == 201, created.body
    subscription_id = created.json()["id"]
    # As the API accepted it before Discord's GitHub-compatible webhooks were refused.
    table(get_settings().subscriptions_table).update_item(
        Key={"team_id": "team-a", "subscription_id": subscription_id},
        UpdateExpression="SET endpoint = :endpoint",
        ExpressionAttributeValues={":endpoint": "https://discord.com/api/webhooks/1/DISCORD-TOKEN/github"},
    )
    listed, read = api.get("/v3/webhooks"), api.get(f"/v3/webhooks/{subscription_id}")
    assert (listed.status, read.status) == (200, 200)
    assert read.json()["endpoint"] == "https://discord.com/api/webhooks/1/***/github"
    disabled = api.patch(f"/v3/webhooks/{subscription_id}", {"enabled": False})
    assert disabled.status == 422 and [param["name"] for param in disabled.json()["invalid_params"]] == ["endpoint"]
