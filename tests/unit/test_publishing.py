import json

import pytest
from botocore.exceptions import ClientError

from hookrelay.models import EventIn
from hookrelay.problems import ProblemError
from hookrelay.publishing import EventPublisher, FanOutRequest, InvalidEventMessage, new_event, read_queue_message


class FakeEvents:
    def __init__(self, response: dict[str, object] | None = None, error: Exception | None = None) -> None:
        self.entries: list[dict[str, object]] = []
        self.response = response or {"FailedEntryCount": 0, "Entries": [{"EventId": "e"}]}
        self.error = error

    def put_events(self, Entries: list[dict[str, object]]) -> dict[str, object]:
        if self.error:
            raise self.error
        self.entries.extend(Entries)
        return self.response


def body(**fields: object) -> EventIn:
    return EventIn.model_validate({"event_name": "signature_request.done", "data": {"id": 1}, **fields})


def test_published_entry_round_trips_to_the_ingest_reader() -> None:
    events = FakeEvents()
    event = new_event("acme", body(scope="public_api", event_time=1704067200))
    EventPublisher(events, "bus").publish(event)
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
    with pytest.raises(ProblemError) as raised:
        EventPublisher(events, "bus").publish(new_event("acme", body()))
    assert raised.value.problem.status == 503
    assert raised.value.headers["Retry-After"]


def test_an_event_over_the_entry_limit_is_413() -> None:
    with pytest.raises(ProblemError) as raised:
        EventPublisher(FakeEvents(), "bus").publish(new_event("acme", body(data={"blob": "x" * 262_000})))
    assert raised.value.problem.status == 413


def bus_message(data_json: str) -> str:
    """An events-queue message as a producer's own PutEvents leaves it (no API in between), `data` given as
    JSON text (json.dumps itself recurses once per level)."""
    event = new_event("acme", body()).model_dump()
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
