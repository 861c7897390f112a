"""Messages of the events queue: events as EventBridge's rule delivers them, and the continuations of
long fan-outs, which ingest writes there itself in the same shape."""

import json
from dataclasses import dataclass
from typing import Any

from hookrelay import json_text
from hookrelay.json_depth import MAX_JSON_DEPTH, too_deeply_nested
from hookrelay.records import Event, InvalidRecord, with_values

SOURCE = "hookrelay"
# The queue's envelope holds the event two levels further down than a publish request does (detail, event).
MAX_MESSAGE_DEPTH = MAX_JSON_DEPTH + 2
_DETAIL_FIELDS = frozenset({"event", "continue_after"})


class InvalidEventMessage(ValueError):
    """A message on the events queue that is not a hookrelay event; the reason says why."""


@dataclass(frozen=True)
class FanOutRequest:
    """The detail of a message on the events queue: an event, and where a fan-out left off."""

    event: Event
    continue_after: str | None = None  # fan out to subscriptions after this id only

    def detail(self) -> dict[str, Any]:
        """As the bus and the queue carry it: fields without a value left out."""
        return {**with_values(self), "event": with_values(self.event)}

    @classmethod
    def parse(cls, detail: object) -> "FanOutRequest":
        if not isinstance(detail, dict):
            raise InvalidRecord("not an object")
        unknown = detail.keys() - _DETAIL_FIELDS
        if unknown:
            raise InvalidRecord(f"{', '.join(sorted(unknown))}: not a field of a hookrelay event's detail")
        try:
            event = Event.parse(detail.get("event"))
        except InvalidRecord as error:
            raise InvalidRecord(f"event.{error}") from None
        continue_after = detail.get("continue_after")
        if continue_after is not None and not isinstance(continue_after, str):
            raise InvalidRecord("continue_after: not a string")
        return cls(event, continue_after)


def queue_message(request: FanOutRequest) -> str:
    """A continuation written straight to the events queue, in the shape the bus rule delivers."""
    envelope = {"source": SOURCE, "detail-type": request.event.event_name, "detail": request.detail()}
    # Not json_text.dumps: an SQS body may not hold U+FFFE, U+FFFF and other characters JSON lets through
    # raw, so every character outside ASCII is written as its \u escape.
    return json.dumps(envelope, allow_nan=False)


def read_queue_message(body: str) -> FanOutRequest:
    """The fan-out request in an events-queue message (an EventBridge envelope around our detail).

    Producers inside AWS may put events on the bus directly, past the API's checks: the nesting
    limit is applied here too, before parsing, and what the API refuses as not JSON (NaN, a number
    beyond a double's range, a lone surrogate escape), so that what is fanned out can be stored and
    rendered as JSON.
    """
    if too_deeply_nested(body.encode("utf-8"), MAX_MESSAGE_DEPTH):
        raise InvalidEventMessage(f"the event is nested deeper than the API allows ({MAX_JSON_DEPTH} levels)")
    try:
        envelope = json_text.loads(body)
    except ValueError as error:
        raise InvalidEventMessage(f"the body is not JSON ({error})") from None
    if json_text.holds_unpaired_surrogate(body, envelope):
        raise InvalidEventMessage("the body holds a \\u escape of half a UTF-16 surrogate pair, alone")
    if not isinstance(envelope, dict):
        raise InvalidEventMessage("the body is not an EventBridge event")
    if envelope.get("source") != SOURCE:
        raise InvalidEventMessage(f"source is {envelope.get('source')!r}, not {SOURCE!r}")
    try:
        request = FanOutRequest.parse(envelope.get("detail"))
    except InvalidRecord as error:
        raise InvalidEventMessage(f"the detail is not a hookrelay event ({error})") from None
    if envelope.get("detail-type") != request.event.event_name:
        raise InvalidEventMessage(f"detail-type {envelope.get('detail-type')!r} differs from event_name")
    return request
