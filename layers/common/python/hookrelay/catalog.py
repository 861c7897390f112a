"""The event catalog: every event name hookrelay accepts, with a description and a sample `data`.

The catalog is data (catalog.json beside this module): the 27 Yousign events and the 7 Subnoto
envelope events.
"""

import functools
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

WILDCARD = "*"


class EventType(BaseModel):
    name: str = Field(description="The event name, as published and as delivered.")
    description: str
    sample: dict[str, Any] = Field(description="A realistic `data` object of this event.")


@functools.cache
def event_types() -> tuple[EventType, ...]:
    entries = json.loads((Path(__file__).parent / "catalog.json").read_text(encoding="utf-8"))
    return tuple(EventType.model_validate(entry) for entry in entries)


@functools.cache
def event_names() -> frozenset[str]:
    return frozenset(event_type.name for event_type in event_types())


def is_known_event(name: str) -> bool:
    return name in event_names()


def description(name: str) -> str:
    return next((event_type.description for event_type in event_types() if event_type.name == name), name)
