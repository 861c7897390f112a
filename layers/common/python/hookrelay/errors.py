"""Domain errors the logic and the stores raise, in the product's words: hookrelay.http_api turns them into
RFC 9457 problems in one table, the CLI into exit codes, a queue's retry into a message that comes back.

No import beyond the standard library: every function imports this module at its cold start.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The sentence of a refusal whose fields say what is wrong.
SEE_THE_FIELDS = "The request is not valid; see invalid_params."


@dataclass(frozen=True)
class FieldError:
    """What is wrong with one field, named as the client writes it (`events[3].data.signer.id`)."""

    name: str
    reason: str


def field_path(parts: Iterable[str | int]) -> str:
    """A field as the client would write it in JavaScript: `events[3].data.signer.id`."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


class DomainError(Exception):
    """A request refused, or not completed, with the sentence that tells its caller why (`explanation`)
    and the fields at fault, if any."""

    def __init__(self, detail: str, fields: Sequence[FieldError] = ()):
        super().__init__(detail)
        self.detail = detail
        self.fields = tuple(fields)

    @property
    def explanation(self) -> str:
        return self.detail


class NotFound(DomainError):
    """No such thing in the caller's team (another team's ids are not found either)."""

    def __init__(self, what: str):
        super().__init__(f"{what} not found")


class Conflict(DomainError):
    """The thing's current state forbids the request (disabled, already queued, at a limit)."""


class TeamLimitReached(Conflict):
    """A write that would take a team past one of its limits (its number of subscriptions, their stored
    size): nothing was written. The text names the limit and what to do."""


class Invalid(DomainError):
    """The request's fields, each with what is wrong with it."""

    def __init__(self, *fields: FieldError, detail: str = SEE_THE_FIELDS):
        super().__init__(detail, fields)


def invalid_fields(errors: Iterable[Mapping[str, Any]]) -> Invalid:
    """Pydantic's validation errors (dicts of `loc` and `msg`) as one Invalid."""
    return Invalid(*(FieldError(_field_name(error.get("loc", ())), str(error.get("msg"))) for error in errors))


def _field_name(location: Sequence[Any]) -> str:
    # Body fields are named as the client wrote them; query and path parameters keep their source.
    parts = list(location)
    if parts and parts[0] == "body":
        parts = parts[1:]
    return field_path(part if isinstance(part, int) else str(part) for part in parts) or "body"


class TooLarge(DomainError):
    """A body, an event or a batch over a size limit; `fields` name the parts at fault, when several."""


class Unavailable(DomainError):
    """The request could not be completed for now, and nothing of it was written: DynamoDB kept cancelling
    or throttling its writes (or the item kept changing under it) after every bounded retry. Asking again
    after `retry_after` seconds is expected to work."""

    def __init__(self, detail: str, retry_after: int = 1):
        super().__init__(detail)
        self.retry_after = retry_after

    @property
    def explanation(self) -> str:
        return f"hookrelay could not complete the request now: {self.detail}. Send it again in {self.retry_after} s."


class EventsNotAccepted(DomainError):
    """Events the bus did not take after every retry (logged where that happened); those it took are on
    their way. Publishing the others again, with the same event ids, after `retry_after` seconds is safe."""

    def __init__(self, detail: str, *, published: Sequence[str], not_published: Sequence[str], retry_after: int):
        super().__init__(detail)
        self.published = list(published)
        self.not_published = list(not_published)
        self.retry_after = retry_after
