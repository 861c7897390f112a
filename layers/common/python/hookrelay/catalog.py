"""The event catalog: every event name hookrelay accepts, with a description and a sample `data`.

The catalog is data (catalog.json beside this module): the 27 Yousign events and the 7 Subnoto
envelope events.
"""

import functools
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hookrelay.event_schemas import data_schema

WILDCARD = "*"


class EventType(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(description="The event name, as published and as delivered.")
    description: str
    sample: dict[str, Any] = Field(description="A realistic `data` object of this event.")
    # Not named `schema`, which pydantic's BaseModel has as a method.
    data_schema: dict[str, Any] = Field(
        alias="schema",
        description="The JSON Schema (draft 2020-12) of this event's `data`; other properties are allowed."
        " POST /v3/events checks `data` against it when HOOKRELAY_VALIDATE_EVENT_DATA is true.",
    )


@functools.cache
def event_types() -> tuple[EventType, ...]:
    entries = json.loads((Path(__file__).parent / "catalog.json").read_text(encoding="utf-8"))
    return tuple(EventType.model_validate({**entry, "schema": data_schema(entry["name"])}) for entry in entries)


def event_names() -> frozenset[str]:
    return frozenset(_by_name())


def is_known_event(name: str) -> bool:
    return name in _by_name()


def event_type(name: str) -> EventType | None:
    return _by_name().get(name)


@functools.cache
def _by_name() -> dict[str, EventType]:
    return {event_type.name: event_type for event_type in event_types()}


def description(name: str) -> str:
    known = _by_name().get(name)
    return known.description if known else name
