"""What the routes' OpenAPI text shares: the problems every route may answer, and the subscription id."""

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from hookrelay import problems


def problem(description: str) -> OpenAPIResponse:
    """An OpenAPI response documented as an RFC 9457 problem."""
    return {"description": description, "content": {problems.PROBLEM_CONTENT_TYPE: {"model": problems.Problem}}}


def responses(model: Any, errors: dict[int, Any], status: HTTPStatus = HTTPStatus.OK) -> dict[int, Any]:
    """A route's documented answers: its JSON result, then its problems (powertools documents the
    result from the return type only for a route without `responses`)."""
    return {status: {"description": status.phrase, "content": {"application/json": {"model": model}}}, **errors}


ERRORS: dict[int, Any] = {
    **{
        status: problem(status.phrase)
        for status in (
            HTTPStatus.BAD_REQUEST,
            HTTPStatus.UNAUTHORIZED,
            HTTPStatus.UNPROCESSABLE_ENTITY,
            # The team's limit (hookrelay.team_limits), with Retry-After.
            HTTPStatus.TOO_MANY_REQUESTS,
        )
    },
    HTTPStatus.SERVICE_UNAVAILABLE: problem(
        "DynamoDB kept refusing the request (conflicting writes, throttling) after hookrelay's retries:"
        " send it again after Retry-After seconds."
    ),
}
ERRORS_BY_ID = {**ERRORS, HTTPStatus.NOT_FOUND: problem("No subscription with this id in the caller's team.")}
WebhookId = Annotated[str, Path(description="The subscription id.")]
