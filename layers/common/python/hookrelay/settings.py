"""The configuration every function reads: environment variables declared in template.yaml Globals."""

import functools
import os
import re
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from hookrelay.clock import parse_duration
from hookrelay.retry import DEFAULT_SCHEDULE, parse_schedule

# A CSP source expression without what would end it or the header: no ';', ',', quotes but keywords' own.
_FRAME_SOURCE = re.compile(
    r"^('none'|'self'|[a-z][a-z0-9+.-]*:|([a-z][a-z0-9+.-]*://)?(\*\.)?[A-Za-z0-9.-]+(:\d+|:\*)?)$"
)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    subscriptions_table: str = Field(alias="HOOKRELAY_SUBSCRIPTIONS_TABLE")
    api_keys_table: str = Field(alias="HOOKRELAY_API_KEYS_TABLE")
    deliveries_table: str = Field(alias="HOOKRELAY_DELIVERIES_TABLE")
    event_bus: str = Field(alias="HOOKRELAY_EVENT_BUS")
    events_queue_url: str = Field(alias="HOOKRELAY_EVENTS_QUEUE_URL")
    delivery_queue_url: str = Field(alias="HOOKRELAY_DELIVERY_QUEUE_URL")
    allow_private_endpoints: bool = Field(False, alias="HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS")
    api_key_cache_seconds: float = Field(60.0, ge=0, alias="HOOKRELAY_API_KEY_CACHE_SECONDS")
    max_subscriptions_per_team: int = Field(1000, ge=1, alias="HOOKRELAY_MAX_SUBSCRIPTIONS_PER_TEAM")
    fanout_chunk_size: int = Field(500, ge=1, le=10_000, alias="HOOKRELAY_FANOUT_CHUNK_SIZE")
    retry_schedule: str = Field(DEFAULT_SCHEDULE, alias="HOOKRELAY_RETRY_SCHEDULE")
    due_shards: int = Field(8, ge=1, le=64, alias="HOOKRELAY_DUE_SHARDS")
    # A send's timeouts: connecting, and the whole exchange (SPEC §4: 5 s and 15 s; hookrelay.transport's
    # defaults, not imported from there so that reading settings does not import requests).
    send_connect_timeout_seconds: float = Field(5.0, gt=0, alias="HOOKRELAY_SEND_CONNECT_TIMEOUT_SECONDS")
    send_timeout_seconds: float = Field(15.0, gt=0, alias="HOOKRELAY_SEND_TIMEOUT_SECONDS")
    # How long a rotated-out secret keeps signing beside the new one.
    secret_rotation_overlap: Annotated[timedelta, BeforeValidator(parse_duration)] = Field(
        timedelta(hours=24), alias="HOOKRELAY_SECRET_ROTATION_OVERLAP"
    )
    # Off by default: producers written before the catalog had schemas keep being accepted.
    validate_event_data: bool = Field(False, alias="HOOKRELAY_VALIDATE_EVENT_DATA")

    # Who may frame the portal page: CSP frame-ancestors sources ('none', 'self', https://app.example.com ...).
    portal_frame_ancestors: str = Field("'none'", alias="HOOKRELAY_PORTAL_FRAME_ANCESTORS")

    @field_validator("portal_frame_ancestors")
    @classmethod
    def _frame_ancestors_are_sources(cls, value: str) -> str:
        sources = value.split()
        if not sources or not all(_FRAME_SOURCE.match(source) for source in sources):
            raise ValueError(
                "HOOKRELAY_PORTAL_FRAME_ANCESTORS is a space-separated list of CSP sources"
                " ('none', 'self', https://app.example.com, https://*.example.com)"
            )
        if "'none'" in sources and len(sources) > 1:
            raise ValueError("HOOKRELAY_PORTAL_FRAME_ANCESTORS: 'none' cannot be combined with other sources")
        return " ".join(sources)

    @field_validator("retry_schedule")
    @classmethod
    def _schedule_parses(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @model_validator(mode="after")
    def _connect_within_total(self) -> "Settings":
        if self.send_connect_timeout_seconds > self.send_timeout_seconds:
            raise ValueError(
                f"HOOKRELAY_SEND_CONNECT_TIMEOUT_SECONDS ({self.send_connect_timeout_seconds:g}) is longer than "
                f"HOOKRELAY_SEND_TIMEOUT_SECONDS ({self.send_timeout_seconds:g}), the whole exchange's"
            )
        return self


@functools.cache
def get_settings() -> Settings:
    """Parse the environment once per container; a missing variable fails at start-up."""
    return Settings.model_validate(os.environ)
