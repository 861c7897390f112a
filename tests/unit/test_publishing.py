import dataclasses
import json
import uuid
from typing import TYPE_CHECKING, cast

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from hookrelay import catalog
from hookrelay.errors import DomainError
from hookrelay.events_queue import FanOutRequest, InvalidEventMessage, read_queue_message
from hookrelay.http_api import from_validation_error, problem_of
from hookrelay.models.events import EventBatchIn, EventIn
from hookrelay.publishing import PUT_ATTEMPTS, EventPublisher, new_event
from hookrelay.records import Event

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient


class FakeEvents:
    """EventBridge's PutEvents: by default every entry is put; `failing` lists, call by call, the event ids
    whose entries that call fails (as a throttled or internally failing PutEvents does, entry by entry)."""

    def __init__(
        self,
        response: dict[str, object] | None = None,
        error: Exception | None = None,
        failing: list[set[str]] | None = None,
    ) -> None:
        self.entries: list[dict[str, object]] = []
        self.calls: list[list[str]] = []
        self.response = response
        self.error = error
        self.failing = failing or []

    def put_events(self, Entries: list[dict[str, object]]) -> dict[str, object]:
        if self.error:
            raise self.error
        ids = [json.loads(str(entry["Detail"]))["event"]["event_id"] for entry in Entries]
        failing = self.failing[len(self.calls)] if len(self.calls) < len(self.failing) else set()
        self.calls.append(ids)
        if self.response:
            return self.response
        results: list[dict[str, object]] = []
        for event_id, entry in zip(ids, Entries, strict=True):
            if event_id in failing:
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                self.entries.append(entry)
                results.append({"EventId": f"eb-{event_id}"})
        return {"FailedEntryCount": len(failing & set(ids)), "Entries": results}


def publisher(events: FakeEvents, *, validate_data: bool = False) -> EventPublisher:
    return EventPublisher(cast("EventBridgeClient", events), "bus", validate_data=validate_data, sleep=lambda _: None)


def body(**fields: object) -> EventIn:
    return EventIn.model_validate({"event_name": "signature_request.done", "data": {"id": 1}, **fields})


def test_published_entry_round_trips_to_the_ingest_reader() -> None:
    events = FakeEvents()
    event = new_event("acme", body(scope="public_api", event_time=1704067200))
    publisher(events).publish(event)
    (entry,) = events.entries
    assert entry["Source"] == "hookrelay" and entry["DetailType"] == "signature_request.done"
    assert entry["EventBusName"] == "bus"
    envelope = {
        "source": entry["Source"],
        "detail-type": entry["DetailType"],
        "detail": json.loads(str(entry["Detail"])),
    }
    assert read_queue_message(json.dumps(envelope)) == FanOutRequest(event=event)
    assert event.event_time == "2024-01-01T00:00:00.000Z" and event.team_id == "acme"


def test_event_id_is_kept_or_generated() -> None:
    given = "0f29a0a2-3a6f-44a4-b2a2-5d7b3f1b1f9b"
    assert new_event("acme", body(event_id=given)).event_id == given
    assert new_event("acme", body()).event_id != new_event("acme", body()).event_id


@pytest.mark.parametrize(
    "events",
    [
        FakeEvents(
            response={
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}],
            }
        ),
        FakeEvents(error=ClientError({"Error": {"Code": "InternalException", "Message": "boom"}}, "PutEvents")),
    ],
)
def test_a_failed_publish_is_a_503_with_retry_after(events: FakeEvents) -> None:
    with pytest.raises(DomainError) as raised:
        publisher(events).publish(new_event("acme", body()))
    assert problem_of(raised.value).problem.status == 503
    assert problem_of(raised.value).headers["Retry-After"]


def test_a_failed_entry_is_retried_and_then_accepted() -> None:
    events = FakeEvents(failing=[{EVENT_IDS[0]}])
    publisher(events).publish(new_event("acme", body(event_id=EVENT_IDS[0])))
    assert events.calls == [[EVENT_IDS[0]], [EVENT_IDS[0]]]
    assert len(events.entries) == 1


EVENT_IDS = [str(uuid.UUID(int=index + 1)) for index in range(10)]


def batch(count: int = 10) -> list[Event]:
    return [new_event("acme", body(event_id=event_id)) for event_id in EVENT_IDS[:count]]


def test_a_batch_is_one_put_events_call_in_request_order() -> None:
    events = FakeEvents()
    publisher(events).publish_batch(batch())
    assert events.calls == [EVENT_IDS]
    assert [json.loads(str(entry["Detail"]))["event"]["event_id"] for entry in events.entries] == EVENT_IDS


def test_a_batch_retries_only_its_failed_entries() -> None:
    events = FakeEvents(failing=[{EVENT_IDS[2], EVENT_IDS[7]}, {EVENT_IDS[7]}])
    publisher(events).publish_batch(batch())
    assert events.calls == [EVENT_IDS, [EVENT_IDS[2], EVENT_IDS[7]], [EVENT_IDS[7]]]
    assert sorted(json.loads(str(entry["Detail"]))["event"]["event_id"] for entry in events.entries) == EVENT_IDS


def test_entries_failing_every_retry_are_never_reported_as_accepted() -> None:
    events = FakeEvents(failing=[{EVENT_IDS[2], EVENT_IDS[7]}] * 10)
    with pytest.raises(DomainError) as raised:
        publisher(events).publish_batch(batch())
    assert len(events.calls) == PUT_ATTEMPTS
    assert all(call == [EVENT_IDS[2], EVENT_IDS[7]] for call in events.calls[1:])
    problem = problem_of(raised.value).problem.model_dump()
    assert problem["status"] == 503 and problem_of(raised.value).headers["Retry-After"]
    assert problem["not_published"] == [EVENT_IDS[2], EVENT_IDS[7]]
    assert problem["published"] == [event_id for event_id in EVENT_IDS if event_id not in problem["not_published"]]
    assert "InternalFailure" in problem["detail"]


def test_a_batch_whose_put_events_call_fails_publishes_nothing() -> None:
    events = FakeEvents(error=ClientError({"Error": {"Code": "InternalException", "Message": "boom"}}, "PutEvents"))
    with pytest.raises(DomainError) as raised:
        publisher(events).publish_batch(batch(3))
    problem = problem_of(raised.value).problem.model_dump()
    assert problem["status"] == 503 and problem["published"] == [] and problem["not_published"] == EVENT_IDS[:3]


def test_a_batch_with_events_against_their_schema_names_each_index_and_path_and_publishes_nothing() -> None:
    sample = catalog.event_type("signer.done")
    assert sample is not None
    events = [new_event("acme", body(event_name="signer.done", data=sample.sample)) for _ in range(4)]
    events[1] = dataclasses.replace(events[1], data={**sample.sample, "signer": {"id": 7, "status": "signed"}})
    events[3] = dataclasses.replace(events[3], data={"signature_request": sample.sample["signature_request"]})
    with pytest.raises(DomainError) as raised:
        publisher(fake := FakeEvents(), validate_data=True).publish_batch(events)
    assert problem_of(raised.value).problem.status == 422
    names = [param.name for param in problem_of(raised.value).problem.invalid_params or []]
    assert "events[1].data.signer.id" in names and "events[3].data.signer" in names
    assert not any(name.startswith(("events[0]", "events[2]")) for name in names)
    assert fake.calls == []


def test_a_batch_with_an_event_over_the_entry_limit_is_413_naming_it() -> None:
    events = batch(3)
    events[1] = dataclasses.replace(events[1], data={"blob": "x" * 262_000})
    with pytest.raises(DomainError) as raised:
        publisher(fake := FakeEvents()).publish_batch(events)
    assert problem_of(raised.value).problem.status == 413
    assert [param.name for param in problem_of(raised.value).problem.invalid_params or []] == ["events[1]"]
    assert fake.calls == []


def test_a_batch_over_put_events_request_limit_is_413() -> None:
    events = [dataclasses.replace(event, data={"blob": "x" * 140_000}) for event in batch(2)]
    with pytest.raises(DomainError) as raised:
        publisher(fake := FakeEvents()).publish_batch(events)
    assert problem_of(raised.value).problem.status == 413 and "fewer events" in str(
        problem_of(raised.value).problem.detail
    )
    assert fake.calls == []


@pytest.mark.parametrize(
    ("events", "name"),
    [
        ([], "events"),
        ([{"event_name": "signer.done", "data": {}}] * 11, "events"),
        ("signer.done", "events"),
        (None, "events"),
        (
            [{"event_name": "signer.done", "data": {}}] * 3 + [{"event_name": "signer.finished", "data": {}}],
            "events[3].event_name",
        ),
        ([{"event_name": "signer.done", "data": {}, "event_id": EVENT_IDS[0]}] * 2, "events"),
    ],
)
def test_a_bad_batch_names_the_field(events: object, name: str) -> None:
    fields = {} if events is None else {"events": events}
    with pytest.raises(ValidationError) as raised:
        EventBatchIn.model_validate(fields)
    names = [param.name for param in from_validation_error(raised.value).problem.invalid_params or []]
    assert names == [name]


def test_an_event_over_the_entry_limit_is_413() -> None:
    with pytest.raises(DomainError) as raised:
        publisher(FakeEvents()).publish(new_event("acme", body(data={"blob": "x" * 262_000})))
    assert problem_of(raised.value).problem.status == 413


def bus_message(data_json: str) -> str:
    """An events-queue message as a producer's own PutEvents leaves it (no API in between), `data` given as
    JSON text (json.dumps itself recurses once per level)."""
    event = dataclasses.asdict(new_event("acme", body()))
    envelope = {"source": "hookrelay", "detail-type": event["event_name"], "detail": {"event": {**event, "data": 0}}}
    return json.dumps(envelope).replace('"data": 0', f'"data": {data_json}')


def nested_objects(depth: int) -> str:
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


def test_an_event_put_on_the_bus_directly_may_be_as_deep_as_the_api_allows() -> None:
    # Through the API, `data` is level 2 of a body that may be 32 levels deep: 31 levels of its own.
    assert read_queue_message(bus_message(nested_objects(31))).event.data == json.loads(nested_objects(31))


@pytest.mark.parametrize("depth", [32, 300, 100_000])
def test_an_event_put_on_the_bus_directly_deeper_than_the_api_allows_is_refused(depth: int) -> None:
    with pytest.raises(InvalidEventMessage, match="nested deeper"):
        read_queue_message(bus_message(nested_objects(depth)))
