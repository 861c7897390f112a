"""Records as messages carry them: what the API writes reads back the same, anything else is refused by name."""

import dataclasses
import json
from typing import Any

import pytest
from records import item_size

from hookrelay.events_queue import FanOutRequest, InvalidEventMessage, queue_message, read_queue_message
from hookrelay.models.subscriptions import SubscriptionSettings, SubscriptionView, SubscriptionWithSecret
from hookrelay.records import (
    ATTEMPT_ERROR_BYTES,
    ATTEMPT_URL_BYTES,
    Attempt,
    Delivery,
    DeliveryOrigin,
    Event,
    InvalidRecord,
    Subscription,
    kept_attempts,
    shortened,
)
from hookrelay.store.deliveries import item_of

EVENT = Event(
    event_id="11111111-2222-4333-8444-555555555555",
    event_name="signer.done",
    event_time="2026-01-01T00:00:00.000Z",
    team_id="acme",
    workspace_id="ws-1",
    data={"signer": {"id": "s1", "note": "café ☕", "amount": 12.5, "missing": None}},
)


def message(event: dict[str, Any], **detail: object) -> str:
    return json.dumps(
        {"source": "hookrelay", "detail-type": event.get("event_name"), "detail": {"event": event, **detail}}
    )


def test_an_event_and_its_continuation_read_back_as_written() -> None:
    request = FanOutRequest(EVENT, continue_after="00000000-0000-4000-8000-000000000007")
    assert read_queue_message(queue_message(request)) == request
    assert read_queue_message(queue_message(FanOutRequest(EVENT))) == FanOutRequest(EVENT)


def test_an_event_time_is_read_as_the_api_writes_it() -> None:
    fields = {**dataclasses.asdict(EVENT), "event_time": "2026-01-01T01:00:00+01:00"}
    assert read_queue_message(message(fields)).event.event_time == "2026-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"event_id": "not-a-uuid"}, "event.event_id: must be a UUID"),
        ({"event_id": 7}, "event.event_id: not a string"),
        ({"team_id": ""}, "event.team_id: must have 1 to 128"),
        ({"team_id": "t" * 129}, "event.team_id: must have 1 to 128"),
        ({"event_time": "yesterday"}, "event.event_time"),
        # In UTC, years 0 and 10000: a producer writing to the bus directly is not checked by the API.
        ({"event_time": "0001-01-01T00:30:00+01:00"}, "event.event_time: is not a time between 1970 and 9999"),
        ({"event_time": "9999-12-31T23:30:00-01:00"}, "event.event_time: is not a time between 1970 and 9999"),
        ({"sandbox": "true"}, "event.sandbox: not a boolean"),
        ({"scope": ["app"]}, "event.scope: not a string"),
        ({"workspace_id": 3}, "event.workspace_id: not a string"),
        ({"data": [1]}, "event.data: not an object"),
    ],
)
def test_an_event_the_api_would_not_have_written_is_refused_by_field(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidEventMessage, match=reason):
        read_queue_message(message({**dataclasses.asdict(EVENT), **change}))


def test_a_detail_with_a_field_of_no_hookrelay_event_is_refused() -> None:
    with pytest.raises(InvalidEventMessage, match="extra: not a field"):
        read_queue_message(message(dataclasses.asdict(EVENT), extra=1))
    with pytest.raises(InvalidEventMessage, match="continue_after: not a string"):
        read_queue_message(message(dataclasses.asdict(EVENT), continue_after=5))


def test_a_string_utf8_cannot_carry_is_refused() -> None:
    # Put on the bus past the API: "\ud800" alone parses into a string no later step can encode.
    body = message(dataclasses.asdict(EVENT)).replace("s1", "\\ud800")
    with pytest.raises(InvalidEventMessage, match="surrogate"):
        read_queue_message(body)
    paired = message(dataclasses.asdict(EVENT)).replace("s1", "\\ud83d\\ude00")
    assert read_queue_message(paired).event.data["signer"]["id"] == "\U0001f600"


@pytest.mark.parametrize(
    ("number", "named"),
    [
        ("NaN", "NaN is not a JSON number"),
        ("-Infinity", "-Infinity is not a JSON number"),
        # Python reads them as infinities: they were stored, then rendered `Infinity`, which is not JSON.
        ("1e400", "a number is beyond ±1.8e308"),
        ("-1E+309", "a number is beyond ±1.8e308"),
        ("1" + "0" * 309, "a number is beyond ±1.8e308"),
    ],
)
def test_numbers_json_cannot_carry_are_refused_by_name(number: str, named: str) -> None:
    body = message(dataclasses.asdict(EVENT)).replace("12.5", number)
    with pytest.raises(InvalidEventMessage, match=f"the body is not JSON \\({named}"):
        read_queue_message(body)


def test_an_origin_is_read_only_whole_and_typed() -> None:
    origin = DeliveryOrigin(
        team_id="acme", subscription_id="s", event_id="e", event_name="signer.done", created_at="t", expires_at=9
    )
    assert DeliveryOrigin.parse(dataclasses.asdict(origin)) == origin
    for change, reason in (
        ({"expires_at": True}, "expires_at"),
        ({"expires_at": "9"}, "expires_at"),
        ({"team_id": None}, "team_id"),
    ):
        with pytest.raises(InvalidRecord, match=reason):
            DeliveryOrigin.parse({**dataclasses.asdict(origin), **change})


def test_every_field_the_api_shows_of_a_subscription_is_a_field_of_its_record() -> None:
    # The views are made from the record field by field: one the record lacks would fail every read.
    fields = {field.name for field in dataclasses.fields(Subscription)}
    for view in (SubscriptionSettings, SubscriptionView, SubscriptionWithSecret):
        assert set(view.model_fields) <= fields, view.__name__


# As many characters as the API takes, 3 bytes each in UTF-8 past the host.
LONGEST_ENDPOINT = "https://hooks.example.com/" + "界" * (2048 - len("https://hooks.example.com/"))


def test_a_url_or_error_over_its_bytes_is_cut_visibly_and_an_ascii_endpoint_kept_whole() -> None:
    url = shortened(LONGEST_ENDPOINT, ATTEMPT_URL_BYTES)
    assert url.endswith("界…") and len(url.encode()) <= ATTEMPT_URL_BYTES
    assert LONGEST_ENDPOINT.startswith(url.removesuffix("…"))
    ascii_endpoint = "https://hooks.example.com/" + "x" * (2048 - len("https://hooks.example.com/"))
    assert shortened(ascii_endpoint, ATTEMPT_URL_BYTES) == ascii_endpoint
    assert len(shortened("𝄞" * 1000, ATTEMPT_ERROR_BYTES).encode()) <= ATTEMPT_ERROR_BYTES


def test_a_delivery_record_stays_under_dynamodb_s_item_limit_whatever_its_attempts_hold() -> None:
    # Attempts held the endpoint whole (2 048 characters, up to 8 KB in UTF-8) and excerpts of up to 3 KB:
    # 50 of them passed 400 KB, and DynamoDB refused every later write of a delivery retried by hand.
    attempt = Attempt(
        at="2026-01-01T00:00:00.000Z",
        url=shortened(LONGEST_ENDPOINT, ATTEMPT_URL_BYTES),
        status_code=599,
        latency_ms=999_999,
        error=shortened("𝄞" * 1000, ATTEMPT_ERROR_BYTES),
        response_excerpt="é" * 512,  # 1 KiB, the excerpt's limit (tests/integration/test_transport.py)
    )
    event = dataclasses.replace(EVENT, team_id="𝄞" * 128, event_name="x" * 64)
    delivery = Delivery(
        id="11111111-2222-4333-8444-555555555555",
        subscription_id="11111111-2222-4333-8444-555555555555",
        event_id=event.event_id,
        event_name=event.event_name,
        status="scheduled",
        attempt_count=999_999,
        next_attempt_at="2026-01-01T00:00:00.000Z",
        test=True,
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
        team_id=event.team_id,
        event=event,
        attempts=kept_attempts([attempt] * 60),
        requested_attempt=999_999,
        expires_at=2_000_000_000,
    )
    item = {**item_of(delivery), "due_at": "2026-01-01T00:00:00.000Z", "due_shard": "due#99"}
    assert item_size(item) <= 185_000  # as records.py states
