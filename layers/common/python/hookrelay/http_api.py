"""What the API function needs around its routes: the caller's team, early refusals, problem responses."""

import base64
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from hookrelay import problems
from hookrelay.api_keys import TEAM_CONTEXT_KEY
from hookrelay.json_depth import MAX_JSON_DEPTH, too_deeply_nested

MAX_BODY_BYTES = 256 * 1024


def problem_response(error: problems.ProblemError) -> Response[str]:
    return Response(
        status_code=error.problem.status,
        content_type=problems.PROBLEM_CONTENT_TYPE,
        body=error.problem.model_dump_json(exclude_none=True),
        headers=error.headers,
    )


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


def early_refusal(event: dict[str, Any]) -> dict[str, Any] | None:
    """A response for requests refused before any route runs.

    A bad key (401), a body too large (413), not UTF-8 (400), not JSON (415), a JSON array or JSON nested deeper
    than MAX_JSON_DEPTH (422: parsers and stores recurse on each level, and what reaches the bus must be
    deliverable and readable back at every step). The resolver
    would read a form body as form fields and a one-element array as its element, neither of which
    is what the client sent.

    The authorizer lets every request through and says in its context whether the key named a
    team, so that a bad key gets a problem+json 401 here rather than the gateway's bare 403.
    """
    context = _authorizer_context(event)
    if context is not None and not context.get(TEAM_CONTEXT_KEY):
        return _proxy_response(problems.unauthenticated())
    body = _body(event)
    if len(body) > MAX_BODY_BYTES:
        return _proxy_response(
            problems.ProblemError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"The body exceeds {MAX_BODY_BYTES} bytes.")
        )
    content_type = (event.get("headers") or {}).get("content-type")
    if event.get("body") and content_type and not _is_json(content_type):
        return _proxy_response(
            problems.ProblemError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"Send JSON with 'Content-Type: application/json', not {content_type}.",
            )
        )
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return _proxy_response(problems.ProblemError(HTTPStatus.BAD_REQUEST, "The request body is not UTF-8 JSON."))
    if body.lstrip(b" \t\r\n").startswith(b"["):
        return _proxy_response(problems.invalid("body", "must be a JSON object, not an array"))
    deep_field = too_deeply_nested(body)
    if deep_field:
        return _proxy_response(
            problems.invalid(
                deep_field,
                f"is nested deeper than {MAX_JSON_DEPTH} levels of objects and arrays (the body is level 1)",
            )
        )
    return None


def caller_team(app: APIGatewayHttpResolver) -> str:
    """The team of the request's API key, as resolved by the authorizer; a 401 when there is none."""
    team_id = app.current_event.request_context.authorizer.get_lambda.get(TEAM_CONTEXT_KEY)
    if not team_id:
        raise problems.unauthenticated()
    return str(team_id)


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
