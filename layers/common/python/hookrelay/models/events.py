"""The bodies of publishing (POST /v3/events, /v3/events/batch) and of the event catalog."""

import uuid
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from hookrelay import catalog, clock, problems
from hookrelay.models.common import ANSWER, REQUEST_BODY, Name


def _event_name(name: str) -> str:
    if not catalog.is_known_event(name):
        raise PydanticCustomError(
            "unknown_event", "unknown event name {name}; GET /v3/webhook-event-types lists the catalog", {"name": name}
        )
    return name


def _uuid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise PydanticCustomError("uuid", "must be a UUID") from None


def _moment(value: str | int | float) -> str:
    try:
        return clock.iso(clock.parse_moment(value))
    except ValueError as error:
        raise PydanticCustomError("event_time", "{reason}", {"reason": str(error)}) from None


EventName = Annotated[str, AfterValidator(_event_name), Field(description="A catalog event name.")]
EventId = Annotated[str, AfterValidator(_uuid)]
Moment = Annotated[str | int | float, AfterValidator(_moment)]


class EventIn(BaseModel):
    """The body of POST /v3/events: one event of the caller's team."""

    model_config = REQUEST_BODY

    event_name: EventName
    data: dict[str, Any] = Field(description="The event's payload, delivered as `data`.")
    event_id: EventId | None = Field(
        None,
        description="A UUID; generated when absent. Publishing the same id again delivers nothing more,"
        " whatever the content: the id names the event first published with it.",
    )
    event_time: Moment | None = Field(
        None, description="ISO-8601, or unix epoch seconds (milliseconds from 1e11); default now."
    )
    sandbox: bool = False
    scope: Name | None = Field(None, description="E.g. app or public_api; matches only ['*'] when absent.")
    workspace_id: Name | None = Field(None, description="Matches only ['*'] when absent.")


MAX_EVENTS_PER_BATCH = 10  # PutEvents takes at most 10 entries


def _distinct_event_ids(events: list[EventIn]) -> list[EventIn]:
    first_index: dict[str, int] = {}
    for index, event in enumerate(events):
        if event.event_id is None:
            continue
        if event.event_id in first_index:
            raise PydanticCustomError(
                "repeated_event_id",
                "events[{index}].event_id repeats events[{first}].event_id; an event id is its idempotency key,"
                " so the second would never be delivered",
                {"index": index, "first": first_index[event.event_id]},
            )
        first_index[event.event_id] = index
    return events


class EventBatchIn(BaseModel):
    """The body of POST /v3/events/batch: events of the caller's team, published together."""

    model_config = REQUEST_BODY

    events: Annotated[
        list[EventIn],
        Field(
            min_length=1,
            max_length=MAX_EVENTS_PER_BATCH,
            description=f"1 to {MAX_EVENTS_PER_BATCH} events, each what POST /v3/events takes.",
        ),
        AfterValidator(_distinct_event_ids),
    ]


class PublishedEvent(BaseModel):
    model_config = ANSWER

    event_id: str


class PublishedEvents(BaseModel):
    model_config = ANSWER

    data: list[PublishedEvent] = Field(description="One per event, in the order of the request.")


class EventType(BaseModel):
    """A catalog event, as GET /v3/webhook-event-types lists it."""

    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    name: str = Field(description="The event name, as published and as delivered.")
    description: str
    sample: dict[str, Any] = Field(description="A realistic `data` object of this event.")
    # Not named `schema`, which pydantic's BaseModel has as a method.
    data_schema: dict[str, Any] = Field(
        alias="schema",
        description="The JSON Schema (draft 2020-12) of this event's `data`; other properties are allowed."
        " POST /v3/events checks `data` against it when HOOKRELAY_VALIDATE_EVENT_DATA is true.",
    )

    @classmethod
    def of(cls, entry: catalog.CatalogEntry) -> Self:
        return cls(name=entry.name, description=entry.description, sample=entry.sample, data_schema=entry.data_schema)


class NotPublished(problems.Problem):
    """The 503 of a publish that the bus did not wholly take (documents the problem's extension members)."""

    published: list[str] = Field(description="Event ids accepted: they will be delivered.")
    not_published: list[str] = Field(description="Event ids not accepted: publish them again.")
