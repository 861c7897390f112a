"""How a delivery reaches its destination: one Sender per kind of endpoint, chosen by its scheme in one place.

The HTTPS transport (hookrelay.transport) is the web sender. A new kind of destination (an AWS queue or
bus, a polling endpoint) is a Sender registered for its scheme in `Senders`: nothing else in delivery
asks which kind it holds.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt got: an HTTP status, or the class of error that prevented one."""

    status_code: int | None
    latency_ms: int
    response_excerpt: str = ""
    error: str | None = None
    timed_out: bool = False
    retry_after: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Request:
    """A rendered and signed delivery, for its subscription's endpoint."""

    endpoint: str
    body: bytes
    headers: Mapping[str, str]


class Sender(Protocol):
    @property
    def deadline_seconds(self) -> float:
        """The longest one of its sends takes (the web sender's: HOOKRELAY_SEND_TIMEOUT_SECONDS)."""
        ...

    def send(self, request: Request, deadline_seconds: float) -> AttemptResult:
        """Send `request`, ended after `deadline_seconds` whatever it is doing; never raises for the
        destination's sake (its refusals, errors and silence are the result's)."""
        ...


@dataclass(frozen=True)
class Senders:
    """Which sender serves an endpoint: the one registered for its scheme, else the web sender, which
    refuses (as the attempt's error) an endpoint it cannot send to."""

    web: Sender
    by_scheme: Mapping[str, Sender] = field(default_factory=dict)

    def for_endpoint(self, endpoint: str) -> Sender:
        scheme = endpoint.partition("://")[0].lower()
        return self.by_scheme.get(scheme, self.web)

    @property
    def deadline_seconds(self) -> float:
        """The longest any send takes, whichever sender makes it: what an attempt's time budget counts,
        since which sender serves it is known only once its subscription is read."""
        return max(sender.deadline_seconds for sender in (self.web, *self.by_scheme.values()))
