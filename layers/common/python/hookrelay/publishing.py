"""Events on their way in: published to the EventBridge bus by the API, read back from the queue by ingest."""

import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from hookrelay import clock, event_schemas, json_text
from hookrelay.errors import EventsNotAccepted, FieldError, Invalid, TooLarge, field_path
from hookrelay.events_queue import SOURCE, FanOutRequest
from hookrelay.models.events import EventIn
from hookrelay.observability import AwsError, log_aws_error, log_failure
from hookrelay.records import Event

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

# EventBridge's limit for one PutEvents entry: source, detail-type and detail together.
MAX_ENTRY_BYTES = 256 * 1024
RETRY_AFTER_SECONDS = 5
# PutEvents calls for one request: the first, then one per backoff for the entries still failing (well
# within the API function's 10 s Timeout: the bus answers in tens of milliseconds).
PUT_BACKOFF_SECONDS = (0.1, 0.4)
PUT_ATTEMPTS = len(PUT_BACKOFF_SECONDS) + 1


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


def bus_entry(request: FanOutRequest, bus_name: str) -> "PutEventsRequestEntryTypeDef":
    return {
        "Source": SOURCE,
        "DetailType": request.event.event_name,
        "Detail": json_text.dumps(request.detail()),
        "EventBusName": bus_name,
    }


def check_data(event: Event) -> None:
    """Refuse, Invalid naming each violation's path, data that does not follow its event's schema."""
    found = event_schemas.violations(event.event_name, event.data)
    if found:
        raise Invalid(
            *(FieldError(path, reason) for path, reason in found.items()),
            detail=f"`data` does not follow the schema of {event.event_name} (GET /v3/webhook-event-types):"
            " see invalid_params.",
        )


def entry_size(entry: "PutEventsRequestEntryTypeDef") -> int:
    """An entry's size as EventBridge counts it against its limits."""
    return sum(len(part.encode("utf-8")) for part in (entry["Source"], entry["DetailType"], entry["Detail"]))


class EventPublisher:
    """Puts events on the bus: one at a time (POST /v3/events) or up to ten in one PutEvents call (the batch)."""

    def __init__(
        self,
        events_client: "EventBridgeClient",
        bus_name: str,
        *,
        validate_data: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._events = events_client
        self._bus_name = bus_name
        self._validate_data = validate_data
        self._sleep = sleep

    def publish(self, event: Event) -> None:
        """Put the event on the bus, or raise Invalid (data against its schema, when validating), TooLarge
        or EventsNotAccepted."""
        self._put([event], [self._entry(event)])

    def publish_batch(self, events: Sequence[Event]) -> None:
        """Put the events on the bus in one PutEvents call, or raise: refused events (Invalid, TooLarge),
        each named `events[i]...`, publish nothing; EventsNotAccepted names the event ids published and those not."""
        entries: list[PutEventsRequestEntryTypeDef] = []
        refusals: list[tuple[int, Invalid | TooLarge]] = []
        for index, event in enumerate(events):
            try:
                entries.append(self._entry(event))
            except (Invalid, TooLarge) as refusal:
                refusals.append((index, refusal))
        if refusals:
            raise _batch_refusal(refusals)
        size = sum(map(entry_size, entries))
        if size > MAX_ENTRY_BYTES:
            raise TooLarge(
                f"The events are {size} bytes together; one PutEvents call takes at most {MAX_ENTRY_BYTES}."
                " Send fewer events per batch.",
            )
        self._put(events, entries)

    def _entry(self, event: Event) -> "PutEventsRequestEntryTypeDef":
        if self._validate_data:
            check_data(event)
        entry = bus_entry(FanOutRequest(event=event), self._bus_name)
        size = entry_size(entry)
        if size > MAX_ENTRY_BYTES:
            raise TooLarge(f"The event is {size} bytes; the limit is {MAX_ENTRY_BYTES}.")
        return entry

    def _put(self, events: Sequence[Event], entries: "list[PutEventsRequestEntryTypeDef]") -> None:
        """One PutEvents call for the entries, then again for the entries it failed (a throttled or
        internally failing bus fails entries one by one), a few times with a short backoff."""
        pending = list(range(len(entries)))
        for backoff in (*PUT_BACKOFF_SECONDS, None):
            try:
                response = self._events.put_events(Entries=[entries[index] for index in pending])
            except (BotoCoreError, ClientError) as error:
                # botocore has retried the call itself: it is unavailable, with nothing put (or unknown).
                log_failure("events not published", error, event_ids=[events[index].event_id for index in pending])
                raise _not_published(events, pending, type(error).__name__) from error
            results = response.get("Entries") or []
            failed = [
                (index, result) for index, result in zip(pending, results, strict=True) if result.get("ErrorCode")
            ]
            if not failed:
                return
            pending = [index for index, _ in failed]
            if backoff is None:
                _, result = failed[0]
                code, message = str(result.get("ErrorCode")), str(result.get("ErrorMessage") or "")
                log_aws_error(
                    "events not published",
                    AwsError("PutEvents", code, message),
                    event_ids=[events[index].event_id for index in pending],
                )
                raise _not_published(events, pending, f"{code}: {message}")
            self._sleep(backoff)


def _batch_refusal(refusals: list[tuple[int, Invalid | TooLarge]]) -> Invalid | TooLarge:
    """The events of a batch refused as POST /v3/events would refuse each, named by their index."""
    fields = []
    for index, refusal in refusals:
        for field in refusal.fields or [FieldError("", refusal.detail)]:
            name = field_path(["events", index, *([field.name] if field.name else [])])
            fields.append(FieldError(name, field.reason))
    detail = "Some events are refused, so none was published: see invalid_params."
    # Too large is the refusal only when no event is invalid.
    if all(isinstance(refusal, TooLarge) for _, refusal in refusals):
        return TooLarge(detail, fields)
    return Invalid(*fields, detail=detail)


def _not_published(events: Sequence[Event], failed: list[int], cause: str) -> EventsNotAccepted:
    """The entries the bus did not take; the events it took are on their way, and say so."""
    not_published = [events[index].event_id for index in failed]
    failed_indexes = set(failed)
    published = [event.event_id for index, event in enumerate(events) if index not in failed_indexes]
    return EventsNotAccepted(
        f"{len(not_published)} of {len(events)} events could not be published ({cause}) and were not accepted."
        " Publish them again with the same event_id (published ones are not delivered twice).",
        published=published,
        not_published=not_published,
        retry_after=RETRY_AFTER_SECONDS,
    )
