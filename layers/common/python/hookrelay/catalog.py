"""The event catalog: every event name hookrelay accepts, with a description and a sample `data`.

The catalog is data (catalog.json beside this module): the 27 Yousign events and the 7 Subnoto
envelope events.
"""

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WILDCARD = "*"


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    description: str
    sample: dict[str, Any]

    @property
    def data_schema(self) -> dict[str, Any]:
        # Only the API shows or checks schemas: ingest and delivery, which read the catalog for its
        # names, do not build them (nor import what checking needs) at each cold start.
        from hookrelay.event_schemas import data_schema  # noqa: PLC0415

        return data_schema(self.name)


@functools.cache
def event_types() -> tuple[CatalogEntry, ...]:
    entries = json.loads((Path(__file__).parent / "catalog.json").read_text(encoding="utf-8"))
    return tuple(CatalogEntry(entry["name"], entry["description"], entry["sample"]) for entry in entries)


def event_names() -> frozenset[str]:
    return frozenset(_by_name())


def is_known_event(name: str) -> bool:
    return name in _by_name()


def event_type(name: str) -> CatalogEntry | None:
    return _by_name().get(name)


@functools.cache
def _by_name() -> dict[str, CatalogEntry]:
    return {event_type.name: event_type for event_type in event_types()}


def description(name: str) -> str:
    known = _by_name().get(name)
    return known.description if known else name
