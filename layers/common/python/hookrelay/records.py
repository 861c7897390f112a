"""What hookrelay stores and passes between its functions: events, subscriptions, deliveries, attempts.

Plain dataclasses, not pydantic models: ingest and delivery handle nothing else, and importing pydantic
and building its validators would double their cold start. What these records are made from is
checked where it comes in: request bodies by the API's models (hookrelay.models), queue messages by
the parsers below, which refuse what the API would never have written.
"""

import dataclasses
import functools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

from hookrelay import catalog, clock, json_text
from hookrelay.payloads import JSON, PayloadFormat

DeliveryStatus = Literal["pending", "scheduled", "waiting", "delivered", "failed"]
SignatureScheme = Literal["hmac", "ed25519"]
MAX_TEAM_ID_LENGTH = 128


class InvalidRecord(ValueError):
    """A message or item that does not hold the record it should; the text names the field and why."""


def is_uuid(text: str) -> bool:
    """Ids are UUIDs in canonical form; anything else cannot exist and must not reach DynamoDB's key limits."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def with_values(record: Any) -> dict[str, Any]:
    """A record's fields that hold a value (those that are None left out): what its item or message carries."""
    return {name: value for name, value in vars(record).items() if value is not None}


@functools.cache
def field_names(record: type) -> frozenset[str]:
    return frozenset(field.name for field in dataclasses.fields(record))


def fields_in(record: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values of `record`'s fields among `values`, which may hold others (an item's keys, attributes
    of earlier releases)."""
    names = field_names(record)
    return {name: value for name, value in values.items() if name in names}


def as_json(record: Any) -> str:
    """A record as compact JSON, its fields in declaration order."""
    return json_text.dumps(dataclasses.asdict(record))


def _text(values: dict[str, Any], name: str, *, optional: bool = False) -> Any:
    value = values.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidRecord(f"{name}: {'missing' if value is None else 'not a string'}")
    return value


def _flag(values: dict[str, Any], name: str) -> bool:
    value = values.get(name, False)
    if not isinstance(value, bool):
        raise InvalidRecord(f"{name}: not a boolean")
    return value


@dataclass(frozen=True, kw_only=True)
class Event:
    """An event as it travels on the bus and is stored, once per team and event, for its deliveries."""

    event_id: str
    event_name: str
    event_time: str  # ISO-8601, UTC
    team_id: str
    sandbox: bool = False
    scope: str | None = None
    workspace_id: str | None = None
    data: dict[str, Any]

    @classmethod
    def parse(cls, values: object) -> Self:
        """The event these values hold, as the API writes one (a producer inside AWS may put others on the bus)."""
        if not isinstance(values, dict):
            raise InvalidRecord("not an object")
        event_id = _text(values, "event_id")
        if not is_uuid(event_id):
            raise InvalidRecord("event_id: must be a UUID")
        event_name = _text(values, "event_name")
        if not catalog.is_known_event(event_name):
            raise InvalidRecord(f"event_name: unknown event name {event_name}")
        team_id = _text(values, "team_id")
        if not 1 <= len(team_id) <= MAX_TEAM_ID_LENGTH:
            raise InvalidRecord(f"team_id: must have 1 to {MAX_TEAM_ID_LENGTH} characters")
        try:
            event_time = clock.iso(clock.parse_moment(_text(values, "event_time")))
        except ValueError as error:
            raise InvalidRecord(f"event_time: {error}") from None
        data = values.get("data")
        if not isinstance(data, dict):
            raise InvalidRecord("data: not an object")
        return cls(
            event_id=event_id,
            event_name=event_name,
            event_time=event_time,
            team_id=team_id,
            sandbox=_flag(values, "sandbox"),
            scope=_text(values, "scope", optional=True),
            workspace_id=_text(values, "workspace_id", optional=True),
            data=data,
        )


@dataclass(frozen=True, kw_only=True)
class Subscription:
    """A stored subscription: what the API shows of it, its team, and its signing secrets and keys."""

    id: str
    team_id: str
    endpoint: str
    description: str | None = None
    sandbox: bool = False
    enabled: bool = True
    auto_retry: bool = True
    subscribed_events: list[str]
    scopes: list[str] = field(default_factory=lambda: [catalog.WILDCARD])
    workspaces: list[str] = field(default_factory=lambda: [catalog.WILDCARD])
    payload_format: PayloadFormat = "yousign"
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    sensitive_headers: list[str] = field(default_factory=list)  # custom headers shown masked, besides credentials
    signature_scheme: SignatureScheme = "hmac"
    rate_limit: int | None = None
    disabled_reason: str | None = None
    failing_since: str | None = None  # when the endpoint's current run of failures began
    secret_key: str
    previous_secret_key: str | None = None  # the secret a rotation replaced, still signing
    previous_secret_expires_at: str | None = None  # when the previous secret and private key stop signing
    public_key: str | None = None  # with ed25519: whpk_ + base64 of the key v1a entries verify with
    private_key: str | None = None  # with ed25519: whsk_ + base64, never shown
    previous_private_key: str | None = None  # the private key a rotation replaced, still signing
    created_at: str
    updated_at: str
    # Writes of the stored subscription so far (0: stored before they were counted and not written since).
    # A write made from this copy is made only while the stored one is still at this revision.
    revision: int = 0

    def signing_secrets(self, now: str) -> list[str]:
        """The current secret, then the previous one while its rotation overlap lasts."""
        previous = self.previous_secret_key
        return [self.secret_key, previous] if previous and self._overlapping(now) else [self.secret_key]

    def signing_private_keys(self, now: str) -> list[str]:
        """The current ed25519 private key, then the previous one while its rotation overlap lasts (none for hmac)."""
        previous = self.previous_private_key if self._overlapping(now) else None
        return [key for key in (self.private_key, previous) if key]

    def _overlapping(self, now: str) -> bool:
        return bool(self.previous_secret_expires_at and now < self.previous_secret_expires_at)


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One try at sending a delivery, as the delivery log shows it."""

    # The API documents these fields by their docstrings.
    __pydantic_config__: ClassVar[dict[str, bool]] = {"use_attribute_docstrings": True}

    at: str
    url: str | None = None
    """Where this attempt was sent (secrets in it masked): the endpoint then, which a later change of the
    subscription does not rewrite; over 2 048 bytes in UTF-8, its start, ending in `…`. None when nothing
    was sent, and for attempts recorded before URLs were."""
    status_code: int | None = None
    latency_ms: int
    error: str | None = None
    response_excerpt: str = ""


# A delivery keeps its first attempt and its latest ones (attempt_count counts them all), and each
# attempt's texts are bounded in UTF-8 bytes, so that manual retries can never grow its record past
# DynamoDB's 400 KB item limit. Counted as DynamoDB does (names and values in UTF-8, 3 bytes a map or
# list and 1 an element), an attempt is at most 3.7 KB and a record at most 185 000 bytes
# (tests/unit/test_records.py): under the limit even where moto counts a replaced list twice.
KEPT_LATEST_ATTEMPTS = 49
ATTEMPT_URL_BYTES = 2048  # the API allows 2 048 characters: an ASCII endpoint whole, unless its masks lengthen it
ATTEMPT_ERROR_BYTES = 512
EXCERPT_BYTES = 1024  # SPEC §4: a response excerpt of at most 1 KiB
_CUT = "…"


def utf8_start(text: str, limit: int) -> str:
    """The longest start of `text` that is at most `limit` bytes in UTF-8."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def shortened(text: str, limit: int) -> str:
    """`text` if it is at most `limit` bytes in UTF-8, else its start that fits with "…" after it."""
    if len(text.encode("utf-8")) <= limit:
        return text
    return utf8_start(text, limit - len(_CUT.encode("utf-8"))) + _CUT


def kept_attempts(attempts: list[Attempt]) -> list[Attempt]:
    """The attempts a delivery stores: the first and the latest KEPT_LATEST_ATTEMPTS, oldest first."""
    if len(attempts) <= 1 + KEPT_LATEST_ATTEMPTS:
        return attempts
    return [attempts[0], *attempts[-KEPT_LATEST_ATTEMPTS:]]


@dataclass(frozen=True, kw_only=True)
class DeliveryOrigin:
    """What a delivery record holds before its first attempt. Its first messages carry it, so that the
    first attempt's write creates the record and fan-out writes none."""

    team_id: str
    subscription_id: str
    event_id: str
    event_name: str
    created_at: str
    expires_at: int

    @classmethod
    def parse(cls, values: object) -> Self:
        if not isinstance(values, dict):
            raise InvalidRecord("origin: not an object")
        expires_at = values.get("expires_at")
        if not isinstance(expires_at, int) or isinstance(expires_at, bool):
            raise InvalidRecord("origin.expires_at: not a whole number")
        texts = {name: _text(values, name) for name in ("team_id", "subscription_id", "event_id", "event_name")}
        return cls(**texts, created_at=_text(values, "created_at"), expires_at=expires_at)


@dataclass(frozen=True, kw_only=True)
class DeliverySummary:
    """A delivery as the delivery log lists it."""

    # The API documents these fields by their docstrings.
    __pydantic_config__: ClassVar[dict[str, bool]] = {"use_attribute_docstrings": True}

    id: str
    """The delivery id: the `webhook-id` header of each of its requests."""
    subscription_id: str
    event_id: str
    event_name: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: str | None = None
    test: bool = False
    """Sent by POST /v3/webhooks/{id}/test."""
    created_at: str
    updated_at: str


@dataclass(frozen=True, kw_only=True)
class Delivery(DeliverySummary):
    """One event for one subscription. Its id is derived from both, so fan-out never makes two."""

    team_id: str
    event: Event
    status: DeliveryStatus = "pending"
    attempt_count: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    requested_attempt: int | None = None  # the attempt a manual retry or recovery asked for
    expires_at: int  # unix seconds; DynamoDB's TTL removes the record then

    def summary(self) -> DeliverySummary:
        return DeliverySummary(**fields_in(DeliverySummary, vars(self)))

    def origin(self) -> DeliveryOrigin:
        return DeliveryOrigin(
            team_id=self.team_id,
            subscription_id=self.subscription_id,
            event_id=self.event_id,
            event_name=self.event_name,
            created_at=self.created_at,
            expires_at=self.expires_at,
        )


DELIVERY_ID_NAMESPACE = uuid.UUID("6f1b4d2c-8a3e-5b7f-9c0d-1e2f3a4b5c6d")


def delivery_id(event_id: str, subscription_id: str) -> str:
    return str(uuid.uuid5(DELIVERY_ID_NAMESPACE, f"{event_id}/{subscription_id}"))
