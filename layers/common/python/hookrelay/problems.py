"""RFC 9457 problem details: the one shape of every hookrelay API error."""

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict

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
    """A problem to answer a request with; the logic raises hookrelay.errors, which http_api maps to these."""

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
