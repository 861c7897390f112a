"""What the API function needs around its routes: the caller's team, early refusals, problem responses."""

import base64
import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from botocore.exceptions import ClientError
from pydantic import ValidationError

from hookrelay import json_text, problems
from hookrelay.api_keys import bearer_token, credential_from_context, hash_key, lookup_was_unavailable
from hookrelay.errors import (
    Conflict,
    DomainError,
    EventsNotAccepted,
    FieldError,
    Invalid,
    NotFound,
    TooLarge,
    Unavailable,
    invalid_fields,
)
from hookrelay.json_depth import MAX_JSON_DEPTH, too_deeply_nested
from hookrelay.json_text import NotJsonNumber, holds_unpaired_surrogate
from hookrelay.store.api_keys import Credential
from hookrelay.store.retries import THROTTLED
from hookrelay.team_limits import RequestKind, TeamLimiter, portal_requests

MAX_BODY_BYTES = 256 * 1024
# What a portal token may reach: the routes of the portal page (a subscription's own routes sit under
# /v3/webhooks/), never publishing events, opening portal sessions or anything added later.
_PORTAL_PATHS = re.compile(r"^/v3/(webhooks(/.*)?|webhook-event-types|portal-sessions/current)$")
CURRENT_PORTAL_SESSION_PATH = "/v3/portal-sessions/current"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A batch holds each event two levels down (its list, then the event), and gives each event the depth
# a POST /v3/events body has.
BATCH_PATH = "/v3/events/batch"
_BATCH_EVENT_DEPTH = 2


def problem_response(error: problems.ProblemError) -> Response[str]:
    return Response(
        status_code=error.problem.status,
        content_type=problems.PROBLEM_CONTENT_TYPE,
        body=error.problem.model_dump_json(exclude_none=True),
        headers=error.headers,
    )


# The one table from the logic's errors to the API's answers (the first kind the error is wins).
_STATUS_OF: tuple[tuple[type[DomainError], HTTPStatus], ...] = (
    (NotFound, HTTPStatus.NOT_FOUND),
    (Conflict, HTTPStatus.CONFLICT),
    (Invalid, HTTPStatus.UNPROCESSABLE_ENTITY),
    (TooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (Unavailable, HTTPStatus.SERVICE_UNAVAILABLE),
    (EventsNotAccepted, HTTPStatus.SERVICE_UNAVAILABLE),
)


def problem_of(error: DomainError) -> problems.ProblemError:
    """The RFC 9457 problem that answers a request the logic refused (or could not complete now)."""
    status = next(status for kind, status in _STATUS_OF if isinstance(error, kind))
    headers: dict[str, str] = {}
    extensions: dict[str, Any] = {}
    if isinstance(error, Unavailable | EventsNotAccepted):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, EventsNotAccepted):
        extensions = {"published": error.published, "not_published": error.not_published}
    params = [problems.InvalidParam(name=field.name, reason=field.reason) for field in error.fields]
    return problems.ProblemError(status, error.explanation, params, headers, extensions)


def from_validation_errors(errors: Iterable[Mapping[str, Any]]) -> problems.ProblemError:
    """Pydantic errors (request or model validation) as a 422; early_refusal answered unreadable JSON."""
    return problem_of(invalid_fields(list(errors)))


def from_validation_error(error: ValidationError) -> problems.ProblemError:
    return from_validation_errors(error.errors(include_url=False, include_input=False))


def outage(error: Exception) -> problems.ProblemError:
    """The answer to a request that raised: 503 with Retry-After when asking again soon will do (the
    store's retries ran out, or DynamoDB still throttled after botocore's), else 500."""
    if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in THROTTLED:
        error = Unavailable("DynamoDB is throttling these requests")
    if isinstance(error, Unavailable):
        return problem_of(error)
    return problems.ProblemError(HTTPStatus.INTERNAL_SERVER_ERROR, "hookrelay could not complete the request.")


def _proxy_response(error: problems.ProblemError) -> dict[str, Any]:
    # Refusals made before the resolver runs answer in the API Gateway payload 2.0 shape directly.
    return {
        "statusCode": error.problem.status,
        "headers": {"Content-Type": problems.PROBLEM_CONTENT_TYPE, **error.headers},
        "body": error.problem.model_dump_json(exclude_none=True),
        "isBase64Encoded": False,
    }


def _authorizer_context(event: dict[str, Any]) -> dict[str, Any] | None:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    context = authorizer.get("lambda")
    return context if isinstance(context, dict) else None


def _body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def as_plain_json(event: dict[str, Any]) -> dict[str, Any]:
    """The request with its JSON body typed `application/json`, the one type the resolver parses as JSON
    (it would refuse `Application/JSON` or `application/merge-patch+json`, which early_refusal lets in)."""
    headers = event.get("headers") or {}
    if not _is_json(headers.get("content-type") or "application/json"):
        return event
    return {**event, "headers": {**headers, "content-type": "application/json"}}


def _unreadable_json(text: str) -> str | None:
    """Why a body is not JSON that every later step reads back (the answer's detail), None if it is."""
    try:
        parsed = json_text.loads(text)
    except NotJsonNumber as error:  # Python reads it, then only as null could it be sent on
        return f"The request body is not valid JSON: {error}."
    except ValueError:  # not JSON, or an integer of more digits than Python converts (4 300)
        return "The request body is not valid JSON."
    if holds_unpaired_surrogate(text, parsed):
        return "The request body is not valid JSON: a \\u escape names half of a UTF-16 surrogate pair, alone."
    return None


def early_refusal(event: dict[str, Any]) -> dict[str, Any] | None:
    """A response for requests refused before any route runs.

    A bad key (401), a body too large (413), not UTF-8 (400), not JSON (415), a JSON array or JSON nested deeper
    than MAX_JSON_DEPTH (422: parsers and stores recurse on each level, and what reaches the bus must be
    deliverable and readable back at every step), JSON that does not parse, or whose text no UTF-8 step
    could carry (400: an unpaired surrogate escape; NaN, Infinity or a number beyond a double's range,
    which only null could stand for later; an integer Python will not convert). The resolver
    would read a form body as form fields and a one-element array as its element, neither of which
    is what the client sent.

    The authorizer lets every request through and says in its context whether the key named a
    team, so that a bad key gets a problem+json 401 here rather than the gateway's bare 403.
    """
    refused = _credential_refusal(event)
    if refused:
        return _proxy_response(refused)
    body = _body(event)
    if len(body) > MAX_BODY_BYTES:
        return _proxy_response(problem_of(TooLarge(f"The body exceeds {MAX_BODY_BYTES} bytes.")))
    content_type = (event.get("headers") or {}).get("content-type")
    if event.get("body") and content_type and not _is_json(content_type):
        return _proxy_response(
            problems.ProblemError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"Send JSON with 'Content-Type: application/json', not {content_type}.",
            )
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return _proxy_response(problems.ProblemError(HTTPStatus.BAD_REQUEST, "The request body is not UTF-8 JSON."))
    if body.lstrip(b" \t\r\n").startswith(b"["):
        return _proxy_response(problem_of(Invalid(FieldError("body", "must be a JSON object, not an array"))))
    if (event.get("rawPath") or "") == BATCH_PATH:
        level_one, extra_depth = "each event", _BATCH_EVENT_DEPTH
    else:
        level_one, extra_depth = "the body", 0
    deep_field = too_deeply_nested(body, MAX_JSON_DEPTH + extra_depth)
    if deep_field:
        reason = f"is nested deeper than {MAX_JSON_DEPTH} levels of objects and arrays ({level_one} is level 1)"
        return _proxy_response(problem_of(Invalid(FieldError(deep_field, reason))))
    unreadable = _unreadable_json(text) if text.strip() else None
    if unreadable:
        return _proxy_response(problems.ProblemError(HTTPStatus.BAD_REQUEST, unreadable))
    return None


def _credential_refusal(event: dict[str, Any]) -> problems.ProblemError | None:
    """The 503 when the authorizer could not look the credential up, the 401 for a bad one, a portal's 403."""
    context = _authorizer_context(event)
    if context is None:
        return None
    if lookup_was_unavailable(context):
        return problem_of(Unavailable("The API key or portal token could not be checked now."))
    credential = credential_from_context(context)
    if credential is None:
        return problems.unauthenticated()
    return portal_refusal(credential, _method(event), event.get("rawPath") or "")


def team_limit_refusal(event: dict[str, Any], limiter: TeamLimiter) -> dict[str, Any] | None:
    """The 429 for a team's request over its limit (hookrelay.team_limits); requests without a team are not counted."""
    context = _authorizer_context(event)
    credential = credential_from_context(context) if context is not None else None
    if credential is None:
        return None
    kind = RequestKind.READ if _method(event) in _READ_METHODS else RequestKind.WRITE
    # The team's portal links count apart from its API keys: a link in a customer's hands must not take
    # the requests the platform publishes its events with.
    requester = portal_requests(credential.team_id) if credential.portal else credential.team_id
    retry_after = limiter.admit(requester, kind)
    if retry_after is None:
        return None
    limit = limiter.limit(kind)
    whose = "The team's portal links have" if credential.portal else "The team has"
    return _proxy_response(
        problems.too_many_requests(
            f"{whose} made more {kind} requests than their limit of {limit.burst} every "
            f"{limit.window_seconds:g} s; retry after {retry_after} s.",
            retry_after,
        )
    )


def _method(event: dict[str, Any]) -> str:
    return str(((event.get("requestContext") or {}).get("http") or {}).get("method") or "").upper()


def portal_refusal(credential: Credential, method: str, path: str) -> problems.ProblemError | None:
    """The 403 for a portal token used outside the portal's routes, or to write when it is read-only."""
    if not credential.portal:
        return None
    if not _PORTAL_PATHS.match(path):
        return problems.forbidden("A portal link can only read and manage its team's webhooks; use an API key.")
    signing_out = method == "DELETE" and path == CURRENT_PORTAL_SESSION_PATH
    if credential.read_only and method not in _READ_METHODS and not signing_out:
        return problems.forbidden("This portal link is read-only: it can show everything and change nothing.")
    return None


def caller_credential(request: APIGatewayProxyEventV2) -> Credential:
    """The request's credential, as resolved by the authorizer; a 401 when there is none."""
    credential = credential_from_context(request.request_context.authorizer.get_lambda)
    if credential is None:
        raise problems.unauthenticated()
    return credential


def caller_key_hash(request: APIGatewayProxyEventV2) -> str:
    """The hash of the request's bearer API key or portal token, as stored (the authorizer accepted it)."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise problems.unauthenticated()
    return hash_key(token)


def caller_team(request: APIGatewayProxyEventV2) -> str:
    """The team of the request's API key or portal token; a 401 when there is none."""
    return caller_credential(request).team_id


def api_base_url(request: APIGatewayProxyEventV2) -> str:
    """The URL the caller reached the API at (API Gateway says the scheme in X-Forwarded-Proto)."""
    scheme = (request.headers.get("x-forwarded-proto") or "https").split(",")[0].strip()
    return f"{scheme}://{request.request_context.domain_name}"


def allowed_methods(app: APIGatewayHttpResolver, path: str) -> list[str]:
    """The methods routed for a path, to tell a 405 from a 404 (powertools answers 404 for both)."""
    routes = [*app._static_routes, *app._dynamic_routes]
    return sorted({route.method for route in routes if route.rule.match(path)})


def route_not_found(app: APIGatewayHttpResolver) -> Response[str]:
    path = app.current_event.path
    methods = allowed_methods(app, path)
    if methods:
        error = problems.ProblemError(
            HTTPStatus.METHOD_NOT_ALLOWED,
            f"{app.current_event.http_method} is not supported on {path}; use {', '.join(methods)}.",
            headers={"Allow": ", ".join(methods)},
        )
    else:
        error = problems.ProblemError(HTTPStatus.NOT_FOUND, f"No route {path}.")
    return problem_response(error)
