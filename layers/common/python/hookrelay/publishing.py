"""Events on their way in: published to the EventBridge bus by the API, read back from the queue by ingest."""

import json
import uuid
from http import HTTPStatus
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hookrelay import clock, event_schemas, problems
from hookrelay.json_depth import MAX_JSON_DEPTH, too_deeply_nested
from hookrelay.models import Event, EventIn

SOURCE = "hookrelay"
# EventBridge's limit for one PutEvents entry: source, detail-type and detail together.
MAX_ENTRY_BYTES = 256 * 1024
RETRY_AFTER_SECONDS = "5"
# The queue's envelope holds the event two levels further down than a publish request does (detail, event).
MAX_MESSAGE_DEPTH = MAX_JSON_DEPTH + 2


def new_event(team_id: str, body: EventIn) -> Event:
    return Event(
        event_id=body.event_id or str(uuid.uuid4()),
        event_name=body.event_name,
        event_time=str(body.event_time) if body.event_time is not None else clock.now_iso(),
        team_id=team_id,
        sandbox=body.sandbox,
        scope=body.scope,
        workspace_id=body.workspace_id,
        data=body.data,
    )


class FanOutRequest(BaseModel):
    """The detail of a message on the events queue: an event, and where a fan-out left off."""

    model_config = ConfigDict(extra="forbid")

    event: Event
    continue_after: str | None = Field(None, description="Fan out to subscriptions after this id only.")


def bus_entry(request: FanOutRequest, bus_name: str) -> dict[str, Any]:
    return {
        "Source": SOURCE,
        "DetailType": request.event.event_name,
        "Detail": request.model_dump_json(exclude_none=True),
        "EventBusName": bus_name,
    }


def queue_message(request: FanOutRequest) -> str:
    """A continuation written straight to the events queue, in the shape the bus rule delivers."""
    return json.dumps(
        {"source": SOURCE, "detail-type": request.event.event_name, "detail": request.model_dump(exclude_none=True)}
    )


def check_data(event: Event) -> None:
    """Refuse, with a 422 naming each violation's path, data that does not follow its event's schema."""
    found = event_schemas.violations(event.event_name, event.data)
    if found:
        raise problems.ProblemError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            f"`data` does not follow the schema of {event.event_name} (GET /v3/webhook-event-types):"
            " see invalid_params.",
            [problems.InvalidParam(name=path, reason=reason) for path, reason in found.items()],
        )


class EventPublisher:
    def __init__(self, events_client: Any, bus_name: str, *, validate_data: bool = False):
        self._events = events_client
        self._bus_name = bus_name
        self._validate_data = validate_data

    def publish(self, event: Event) -> None:
        """Put the event on the bus, or raise a 422 (data against its schema, when validating), 413 (too
        large) or 503 (bus unavailable) problem."""
        if self._validate_data:
            check_data(event)
        entry = bus_entry(FanOutRequest(event=event), self._bus_name)
        size = sum(len(str(entry[key]).encode("utf-8")) for key in ("Source", "DetailType", "Detail"))
        if size > MAX_ENTRY_BYTES:
            raise problems.ProblemError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"The event is {size} bytes; the limit is {MAX_ENTRY_BYTES}."
            )
        try:
            response = self._events.put_events(Entries=[entry])
        except (BotoCoreError, ClientError) as error:
            raise _unavailable(type(error).__name__) from error
        if response.get("FailedEntryCount", 0):
            failure = response["Entries"][0]
            raise _unavailable(f"{failure.get('ErrorCode')}: {failure.get('ErrorMessage')}")


def _unavailable(cause: str) -> problems.ProblemError:
    return problems.ProblemError(
        HTTPStatus.SERVICE_UNAVAILABLE,
        f"The event could not be published ({cause}); nothing was accepted. Retry with the same event_id.",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


class InvalidEventMessage(ValueError):
    """A message on the events queue that is not a hookrelay event; the reason says why."""


def read_queue_message(body: str) -> FanOutRequest:
    """The fan-out request in an events-queue message (an EventBridge envelope around our detail).

    Producers inside AWS may put events on the bus directly, past the API's checks: the nesting
    limit is applied here too, before parsing, so that what is fanned out can be stored and rendered.
    """
    if too_deeply_nested(body.encode("utf-8"), MAX_MESSAGE_DEPTH):
        raise InvalidEventMessage(f"the event is nested deeper than the API allows ({MAX_JSON_DEPTH} levels)")
    try:
        envelope = json.loads(body)
    except ValueError as error:
        raise InvalidEventMessage(f"the body is not JSON ({error})") from None
    if not isinstance(envelope, dict):
        raise InvalidEventMessage("the body is not an EventBridge event")
    if envelope.get("source") != SOURCE:
        raise InvalidEventMessage(f"source is {envelope.get('source')!r}, not {SOURCE!r}")
    try:
        request = FanOutRequest.model_validate(envelope.get("detail"))
    except ValidationError as error:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise InvalidEventMessage(f"the detail is not a hookrelay event ({reasons})") from None
    if envelope.get("detail-type") != request.event.event_name:
        raise InvalidEventMessage(f"detail-type {envelope.get('detail-type')!r} differs from event_name")
    return request
