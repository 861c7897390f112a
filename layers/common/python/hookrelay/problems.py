"""RFC 9457 problem details: the one shape of every hookrelay API error."""

from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

PROBLEM_CONTENT_TYPE = "application/problem+json"


class InvalidParam(BaseModel):
    name: str
    reason: str


class Problem(BaseModel):
    # RFC 9457 extension members, such as the event ids of a batch only partly published, follow these.
    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    invalid_params: list[InvalidParam] | None = None


class ProblemError(Exception):
    """Raised by the logic to answer a request with a problem; the API turns it into a response."""

    def __init__(
        self,
        status: HTTPStatus,
        detail: str,
        invalid_params: Sequence[InvalidParam] = (),
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ):
        super().__init__(detail)
        self.headers = dict(headers or {})
        self.problem = Problem(
            title=status.phrase,
            status=status.value,
            detail=detail,
            invalid_params=list(invalid_params) or None,
            **dict(extensions or {}),
        )


def not_found(what: str) -> ProblemError:
    return ProblemError(HTTPStatus.NOT_FOUND, f"{what} not found")


def conflict(detail: str) -> ProblemError:
    return ProblemError(HTTPStatus.CONFLICT, detail)


def unauthenticated() -> ProblemError:
    return ProblemError(
        HTTPStatus.UNAUTHORIZED,
        "A valid API key is required: send it as 'Authorization: Bearer <key>'.",
        headers={"WWW-Authenticate": "Bearer"},
    )


def forbidden(detail: str) -> ProblemError:
    return ProblemError(HTTPStatus.FORBIDDEN, detail)


def too_many_requests(detail: str, retry_after_seconds: int) -> ProblemError:
    return ProblemError(HTTPStatus.TOO_MANY_REQUESTS, detail, headers={"Retry-After": str(retry_after_seconds)})


def invalid(name: str, reason: str) -> ProblemError:
    return ProblemError(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "The request is not valid; see invalid_params.",
        [InvalidParam(name=name, reason=reason)],
    )


def field_path(parts: Iterable[str | int]) -> str:
    """A field as the client would write it in JavaScript: `events[3].data.signer.id`."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def _param_name(location: Sequence[Any]) -> str:
    # Body fields are named as the client wrote them; query and path parameters keep their source.
    parts = list(location)
    if parts and parts[0] == "body":
        parts = parts[1:]
    return field_path(part if isinstance(part, int) else str(part) for part in parts) or "body"


def from_validation_errors(errors: Iterable[Mapping[str, Any]]) -> ProblemError:
    """Pydantic errors (request or model validation) as a 400 for unreadable JSON, else a 422."""
    errors = list(errors)
    if any(error.get("type") == "json_invalid" for error in errors):
        return ProblemError(HTTPStatus.BAD_REQUEST, "The request body is not valid JSON.")
    params = [InvalidParam(name=_param_name(error.get("loc", ())), reason=str(error.get("msg"))) for error in errors]
    return ProblemError(HTTPStatus.UNPROCESSABLE_ENTITY, "The request is not valid; see invalid_params.", params)


def from_validation_error(error: ValidationError) -> ProblemError:
    return from_validation_errors(error.errors(include_url=False, include_input=False))
