"""POST /v3/events/batch through the real api and ingest handlers against moto: up to ten events checked
together, put on the bus in one PutEvents call, and fanned out by ingest as single events are."""

import copy
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from api_client import ApiClient
from api_contract import assert_problem, nested_arrays
from hookrelay import catalog
from hookrelay.aws import client
from hookrelay.http_api import MAX_BODY_BYTES
from hookrelay.records import delivery_id
from hookrelay.settings import get_settings
from hookrelay_cli.local.stack import LocalStack
from hookrelay_cli.local.workers import QueuePoller
from integration.test_ingest import delivery_messages, poll_until_empty, subscribe

BATCH = "/v3/events/batch"


def event(index: int, **fields: object) -> dict[str, object]:
    return {"event_name": "signer.done", "data": {"signer": {"id": f"s-{index}"}}, **fields}


@pytest.fixture
def put_events_calls(stack: LocalStack) -> Iterator[list[list[dict[str, Any]]]]:
    """The entries of every PutEvents call the handlers make."""
    calls: list[list[dict[str, Any]]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["Entries"])

    events = client("events")
    events.meta.events.register("before-parameter-build.events.PutEvents", record)
    yield calls
    events.meta.events.unregister("before-parameter-build.events.PutEvents", record)


def test_ten_events_are_one_put_events_call_and_each_is_fanned_out(
    api: ApiClient, ingest: QueuePoller, put_events_calls: list[list[dict[str, Any]]]
) -> None:
    subscriptions = [subscribe(api), subscribe(api, subscribed_events=["signer.done"], scopes=["app"])]
    response = api.post(BATCH, {"events": [event(index, scope="app") for index in range(10)]})
    assert response.status == 202, response.body
    event_ids = [item["event_id"] for item in response.json()["data"]]
    assert len(set(event_ids)) == 10
    assert [len(entries) for entries in put_events_calls] == [10]

    poll_until_empty(ingest)
    expected = {
        delivery_id(event_id, subscription): event_id for event_id in event_ids for subscription in subscriptions
    }
    # Each delivery's first-attempt message names its event (the first attempt creates the record).
    messages = delivery_messages()
    assert Counter(message["delivery_id"] for message in messages) == Counter(dict.fromkeys(expected, 1))
    assert all(message["origin"]["event_id"] == expected[message["delivery_id"]] for message in messages)


def test_the_answer_keeps_the_order_and_the_given_event_ids(api: ApiClient) -> None:
    given = ["0f29a0a2-3a6f-44a4-b2a2-5d7b3f1b1f9b", None, "7e57a7e5-0000-4000-8000-000000000001"]
    events = [event(index, **({"event_id": event_id} if event_id else {})) for index, event_id in enumerate(given)]
    response = api.post(BATCH, {"events": events})
    assert response.status == 202, response.body
    answered = [item["event_id"] for item in response.json()["data"]]
    assert answered[0] == given[0] and answered[2] == given[2] and answered[1] not in given


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (
            {"events": [event(0), event(1), event(2), {"event_name": "signer.finished", "data": {}}]},
            ["events[3].event_name"],
        ),
        (
            {"events": [event(0), {"event_name": "signer.done", "data": "text", "sandbox": "no"}]},
            ["events[1].data", "events[1].sandbox"],
        ),
        ({"events": [event(index) for index in range(11)]}, ["events"]),
        ({"events": []}, ["events"]),
        ({"events": event(0)}, ["events"]),
        ({}, ["events"]),
        ({"events": [event(0)], "event_name": "signer.done"}, ["event_name"]),
    ],
)
def test_a_bad_batch_is_422_naming_each_field_and_publishes_nothing(
    api: ApiClient, body: dict[str, object], names: list[str], put_events_calls: list[list[dict[str, Any]]]
) -> None:
    problem = assert_problem(api.post(BATCH, body), 422, *names)
    assert sorted(param["name"] for param in problem["invalid_params"]) == sorted(names)  # type: ignore[attr-defined]
    assert put_events_calls == []
    sqs = client("sqs")
    assert not sqs.receive_message(QueueUrl=get_settings().events_queue_url).get("Messages")


def test_events_too_large_together_are_413_and_publish_nothing(
    api: ApiClient, put_events_calls: list[list[dict[str, Any]]]
) -> None:
    # A body under the 256 KiB limit whose events, with their team, id and time, are over what one
    # PutEvents call takes.
    events = [event(index, data={"blob": "x" * 26_100}) for index in range(10)]
    body = json.dumps({"events": events}).encode()
    assert len(body) <= MAX_BODY_BYTES
    problem = assert_problem(api.post(BATCH, body=body, headers={"Content-Type": "application/json"}), 413)
    assert "fewer events" in str(problem["detail"])
    assert put_events_calls == []
    assert api.post(BATCH, {"events": events[:9]}).status == 202


def nested_event(depth: int) -> str:
    """An event nested `depth` levels deep, the event object being level 1 (as the body of POST /v3/events)."""
    return f'{{"event_name": "signer.done", "data": {{"items": {nested_arrays(depth - 2)}}}}}'


def test_each_event_of_a_batch_may_nest_as_deep_as_a_single_one(api: ApiClient) -> None:
    body = f'{{"events": [{nested_event(32)}, {nested_event(3)}]}}'.encode()
    response = api.post(BATCH, body=body, headers={"Content-Type": "application/json"})
    assert response.status == 202, response.body
    body = f'{{"events": [{nested_event(3)}, {nested_event(33)}]}}'.encode()
    problem = assert_problem(api.post(BATCH, body=body, headers={"Content-Type": "application/json"}), 422, "events")
    assert "32 levels" in str(problem)


@pytest.fixture
def validating(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKRELAY_VALIDATE_EVENT_DATA", "true")
    get_settings.cache_clear()


@pytest.mark.usefixtures("validating")
def test_data_against_its_schema_is_named_with_its_event_index(
    api: ApiClient, put_events_calls: list[list[dict[str, Any]]]
) -> None:
    sample = catalog.event_type("signer.done")
    assert sample is not None
    good = {"event_name": "signer.done", "data": sample.sample}
    broken: dict[str, Any] = copy.deepcopy(good)
    broken["data"]["signer"]["info"]["email"] = 42
    assert_problem(api.post(BATCH, {"events": [good, broken, good]}), 422, "events[1].data.signer.info.email")
    assert put_events_calls == []
    assert api.post(BATCH, {"events": [good, good]}).status == 202


def test_a_batch_needs_a_key(api: ApiClient, put_events_calls: list[list[dict[str, Any]]]) -> None:
    assert_problem(api.post(BATCH, {"events": [event(0)]}, key="not-a-key"), 401)
    assert put_events_calls == []


def test_the_api_document_describes_the_batch_and_its_503(api: ApiClient) -> None:
    document = api.get("/v3/openapi.json").json()
    batch = document["paths"][BATCH]["post"]
    assert set(batch["responses"]) >= {"202", "413", "422", "503"}
    schemas = document["components"]["schemas"]
    assert schemas["EventBatchIn"]["properties"]["events"]["maxItems"] == 10
    assert {"published", "not_published"} <= set(schemas["NotPublished"]["properties"])


@pytest.fixture
def bus_fails_entry(stack: LocalStack) -> Iterator[Callable[[int, int], None]]:
    """Make PutEvents answer that an entry failed (the entry at `position` of its first `calls` calls), as a
    throttled bus does entry by entry."""
    state = {"position": -1, "calls": 0}

    def fail_entry(parsed: dict[str, Any], **_: Any) -> None:
        entries = parsed.get("Entries") or []
        if state["calls"] > 0 and len(entries) > state["position"]:
            state["calls"] -= 1
            entries[state["position"]] = {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
            parsed["FailedEntryCount"] = 1

    def arm(position: int, calls: int) -> None:
        state.update(position=position, calls=calls)

    events = client("events")
    events.meta.events.register("after-call.events.PutEvents", fail_entry)
    yield arm
    events.meta.events.unregister("after-call.events.PutEvents", fail_entry)


def test_an_entry_the_bus_fails_is_put_again_alone(
    api: ApiClient, bus_fails_entry: Callable[[int, int], None], put_events_calls: list[list[dict[str, Any]]]
) -> None:
    bus_fails_entry(3, 1)
    response = api.post(BATCH, {"events": [event(index) for index in range(5)]})
    assert response.status == 202, response.body
    assert [len(entries) for entries in put_events_calls] == [5, 1]
    assert put_events_calls[1] == [put_events_calls[0][3]]


def test_an_entry_the_bus_keeps_failing_is_a_503_naming_what_was_published(
    api: ApiClient, bus_fails_entry: Callable[[int, int], None]
) -> None:
    bus_fails_entry(0, 10)
    events = [event(index, event_id=str(uuid.uuid4())) for index in range(3)]
    response = api.post(BATCH, {"events": events})
    problem = assert_problem(response, 503)
    assert response.headers["retry-after"]
    # The first call fails the first entry; each retry holds that entry alone, and fails it again.
    assert problem["not_published"] == [events[0]["event_id"]]
    assert problem["published"] == [events[1]["event_id"], events[2]["event_id"]]
    assert "ThrottlingException" in str(problem["detail"])
