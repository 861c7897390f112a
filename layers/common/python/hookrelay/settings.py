"""The configuration every function reads: environment variables declared in template.yaml Globals.

Parsed by hand, not with pydantic: the authorizer reads its settings and one DynamoDB item per cold
start, and importing pydantic would cost it about a fifth of an `import boto3` for this alone.
"""

import functools
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from hookrelay.clock import parse_duration
from hookrelay.retry import DEFAULT_SCHEDULE, parse_schedule

# The stored size of a team's subscriptions (hookrelay.store.team_items.stored_bytes): a full read of
# the team, a container's first sight of it, reads at most this, about 1 000 read units.
DEFAULT_MAX_SUBSCRIPTION_BYTES_PER_TEAM = 4 * 1024 * 1024

# A CSP source expression without what would end it or the header: no ';', ',', quotes but keywords' own.
_FRAME_SOURCE = re.compile(
    r"^('none'|'self'|[a-z][a-z0-9+.-]*:|([a-z][a-z0-9+.-]*://)?(\*\.)?[A-Za-z0-9.-]+(:\d+|:\*)?)$"
)
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


class SettingsError(ValueError):
    """The environment's configuration is wrong; the message names every variable at fault."""


@dataclass(frozen=True)
class AwsCallLimits:
    """How long one AWS call may take (SDK clients, hookrelay.aws): each attempt is ended at its connect
    timeout and at its read timeout (each wait for the answer's bytes), and botocore's adaptive mode makes
    at most `attempts` of them, slowing the client down while AWS throttles it."""

    connect_timeout_seconds: float
    read_timeout_seconds: float
    attempts: int

    @classmethod
    def from_environment(cls, environment: Mapping[str, str]) -> "AwsCallLimits":
        """Read the three limits alone (hookrelay.aws makes clients where the rest is not set), or raise
        SettingsError."""
        read = _Reader(environment)
        limits = cls.from_reader(read)
        read.raise_problems()
        return limits

    @classmethod
    def from_reader(cls, read: "_Reader") -> "AwsCallLimits":
        return cls(
            connect_timeout_seconds=read.number("HOOKRELAY_AWS_CONNECT_TIMEOUT_SECONDS", 0.5, above=0),
            read_timeout_seconds=read.number("HOOKRELAY_AWS_READ_TIMEOUT_SECONDS", 1.0, above=0),
            attempts=read.whole("HOOKRELAY_AWS_MAX_ATTEMPTS", 2, least=1, most=10),
        )

    @property
    def worst_call_seconds(self) -> float:
        """The longest one call can take: every attempt ended at both its timeouts, and before each retry
        the longest backoff botocore waits after a throttled attempt (up to 1 s, then 2 s, 4 s ...)."""
        per_attempt = self.connect_timeout_seconds + self.read_timeout_seconds
        return self.attempts * per_attempt + sum(2.0**retry for retry in range(self.attempts - 1))


@dataclass(frozen=True)
class Settings:
    subscriptions_table: str
    api_keys_table: str
    deliveries_table: str
    event_bus: str
    events_queue_url: str
    delivery_queue_url: str
    # The second delivery queue, for endpoints that answer slowly (hookrelay.slow_lane).
    slow_lane_url: str
    allow_private_endpoints: bool
    api_key_cache_seconds: float
    max_subscriptions_per_team: int
    max_subscription_bytes_per_team: int
    fanout_chunk_size: int
    retry_schedule: str
    due_shards: int
    # The delivery function's containers at most (its reserved concurrency, the delivery queue's
    # MaximumConcurrency): how often each may write a rate# item (hookrelay.rate_limit).
    delivery_containers: int
    # A send's timeouts: connecting, and the whole exchange (SPEC §4: 5 s and 15 s; hookrelay.transport's
    # defaults, not imported from there so that reading settings does not import the transport).
    send_connect_timeout_seconds: float
    send_timeout_seconds: float
    aws_calls: AwsCallLimits
    # How long a rotated-out secret keeps signing beside the new one.
    secret_rotation_overlap: timedelta
    # Off by default: producers written before the catalog had schemas keep being accepted.
    validate_event_data: bool
    # Who may frame the portal page: CSP frame-ancestors sources ('none', 'self', https://app.example.com ...).
    portal_frame_ancestors: str
    # Each team's writes and publishing through the API: on average, and at once (hookrelay.team_limits).
    team_requests_per_second: float
    team_request_burst: int

    @classmethod
    def from_environment(cls, environment: Mapping[str, str]) -> "Settings":
        """Read every setting, or raise SettingsError naming each variable that is missing or wrong."""
        read = _Reader(environment)
        settings = cls(
            subscriptions_table=read.text("HOOKRELAY_SUBSCRIPTIONS_TABLE"),
            api_keys_table=read.text("HOOKRELAY_API_KEYS_TABLE"),
            deliveries_table=read.text("HOOKRELAY_DELIVERIES_TABLE"),
            event_bus=read.text("HOOKRELAY_EVENT_BUS"),
            events_queue_url=read.text("HOOKRELAY_EVENTS_QUEUE_URL"),
            delivery_queue_url=read.text("HOOKRELAY_DELIVERY_QUEUE_URL"),
            slow_lane_url=read.text("HOOKRELAY_SLOW_LANE_URL"),
            allow_private_endpoints=read.flag("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS", False),
            api_key_cache_seconds=read.number("HOOKRELAY_API_KEY_CACHE_SECONDS", 60.0, least=0),
            max_subscriptions_per_team=read.whole("HOOKRELAY_MAX_SUBSCRIPTIONS_PER_TEAM", 1000, least=1),
            max_subscription_bytes_per_team=read.whole(
                "HOOKRELAY_MAX_SUBSCRIPTION_BYTES_PER_TEAM", DEFAULT_MAX_SUBSCRIPTION_BYTES_PER_TEAM, least=1
            ),
            fanout_chunk_size=read.whole("HOOKRELAY_FANOUT_CHUNK_SIZE", 500, least=1, most=10_000),
            retry_schedule=read.parsed("HOOKRELAY_RETRY_SCHEDULE", DEFAULT_SCHEDULE, _schedule),
            due_shards=read.whole("HOOKRELAY_DUE_SHARDS", 8, least=1, most=64),
            delivery_containers=read.whole("HOOKRELAY_DELIVERY_CONTAINERS", 400, least=1),
            send_connect_timeout_seconds=read.number("HOOKRELAY_SEND_CONNECT_TIMEOUT_SECONDS", 5.0, above=0),
            send_timeout_seconds=read.number("HOOKRELAY_SEND_TIMEOUT_SECONDS", 15.0, above=0),
            aws_calls=AwsCallLimits.from_reader(read),
            secret_rotation_overlap=read.parsed("HOOKRELAY_SECRET_ROTATION_OVERLAP", "24h", parse_duration),
            validate_event_data=read.flag("HOOKRELAY_VALIDATE_EVENT_DATA", False),
            portal_frame_ancestors=read.parsed("HOOKRELAY_PORTAL_FRAME_ANCESTORS", "'none'", _frame_ancestors),
            team_requests_per_second=read.number("HOOKRELAY_TEAM_REQUESTS_PER_SECOND", 100.0, above=0),
            team_request_burst=read.whole("HOOKRELAY_TEAM_REQUEST_BURST", 200, least=1),
        )
        if settings.send_connect_timeout_seconds > settings.send_timeout_seconds:
            read.problems.append(
                f"HOOKRELAY_SEND_CONNECT_TIMEOUT_SECONDS ({settings.send_connect_timeout_seconds:g}) is longer than "
                f"HOOKRELAY_SEND_TIMEOUT_SECONDS ({settings.send_timeout_seconds:g}), the whole exchange's"
            )
        if settings.team_request_burst < settings.team_requests_per_second:
            # A window lasts burst/rate seconds; shorter ones would have each container's refusals write more often.
            read.problems.append(
                f"HOOKRELAY_TEAM_REQUEST_BURST ({settings.team_request_burst}) is less than "
                f"HOOKRELAY_TEAM_REQUESTS_PER_SECOND ({settings.team_requests_per_second:g})"
            )
        read.raise_problems()
        return settings


class _Reader:
    """Reads variables by kind, collecting what is wrong (a wrong one reads as its default meanwhile)."""

    def __init__(self, environment: Mapping[str, str]):
        self._environment = environment
        self.problems: list[str] = []

    def text(self, name: str) -> str:
        if name not in self._environment:
            self.problems.append(f"{name}: required")
            return ""
        return self._environment[name]

    def flag(self, name: str, default: bool) -> bool:
        return self.parsed(name, str(default), _flag)

    def number(self, name: str, default: float, *, least: float | None = None, above: float | None = None) -> float:
        value = self.parsed(name, str(default), _number)
        if least is not None and value < least:
            return self._wrong(name, f"should be greater than or equal to {least:g}", default)
        if above is not None and value <= above:
            return self._wrong(name, f"should be greater than {above:g}", default)
        return value

    def whole(self, name: str, default: int, *, least: int, most: int | None = None) -> int:
        value = self.parsed(name, str(default), _whole)
        if value < least:
            return self._wrong(name, f"should be greater than or equal to {least}", default)
        if most is not None and value > most:
            return self._wrong(name, f"should be less than or equal to {most}", default)
        return value

    def parsed[T](self, name: str, default: str, parse: Callable[[str], T]) -> T:
        try:
            return parse(self._environment.get(name, default))
        except ValueError as error:
            self.problems.append(f"{name}: {error}")
            return parse(default)

    def raise_problems(self) -> None:
        if self.problems:
            raise SettingsError("invalid settings:\n  " + "\n  ".join(self.problems))

    def _wrong[T](self, name: str, complaint: str, default: T) -> T:
        self.problems.append(f"{name}: {complaint}")
        return default


def _flag(text: str) -> bool:
    word = text.strip().lower()
    if word not in _TRUE | _FALSE:
        raise ValueError(f"should be a boolean (true or false), not {text!r}")
    return word in _TRUE


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"should be a valid number, not {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"should be a finite number, not {text!r}")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"should be a valid integer, not {text!r}") from None


def _schedule(text: str) -> str:
    parse_schedule(text)
    return text


def _frame_ancestors(text: str) -> str:
    sources = text.split()
    if not sources or not all(_FRAME_SOURCE.match(source) for source in sources):
        raise ValueError(
            "a space-separated list of CSP sources ('none', 'self', https://app.example.com, https://*.example.com)"
        )
    if "'none'" in sources and len(sources) > 1:
        raise ValueError("'none' cannot be combined with other sources")
    return " ".join(sources)


@functools.cache
def get_settings() -> Settings:
    """Parse the environment once per container; a missing variable fails at start-up."""
    return Settings.from_environment(os.environ)
