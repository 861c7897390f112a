"""An HTTP API Gateway on 127.0.0.1: each request becomes a payload 2.0 event for the real handlers.

Routes, authorizers and the stage's throttling come from template.yaml. What API Gateway itself
answers is reproduced: no route 404 `{"message":"Not Found"}`, over the stage's rate 429
`{"message":"Too Many Requests"}`, authorizer denial 403, handler failure or throttling 500, bodies
over 10 MB 413, and 500 for a request whose event Lambda would refuse (over 6 MB). Any method reaches
an `ANY` route (the API function answers 405 for one it does not serve), and chunked bodies are read
whole: werkzeug serves the HTTP.
"""

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from hookrelay_cli.local.functions import Function
from hookrelay_cli.template import RouteSpec

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# Lambda refuses a synchronous Invoke whose payload, here the payload 2.0 event with the body in it
# (base64 when it is not UTF-8, a third larger), is over 6 MB: RequestEntityTooLargeException, "Request
# must be smaller than 6291456 bytes for the InvokeFunction operation". The function never runs, and
# an HTTP API answers a failed Lambda integration with its bare 500 {"message":"Internal Server Error"},
# the reason only in its access log's $context.integrationErrorMessage (API Gateway developer guide,
# "Troubleshooting issues with HTTP API Lambda integrations"). So a body between about 6 MB and
# MAX_PAYLOAD_BYTES gets that 500, not the API's own 413 problem.
LAMBDA_SYNC_PAYLOAD_BYTES = 6_291_456
_API_ID = "local"
# Not named after the module: powertools filters root-handler records whose logger name contains its
# service name (hookrelay) out of the root handler.
_log = logging.getLogger("local.gateway")


@dataclass(frozen=True)
class GatewayResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _gateway_message(status: int, message: str) -> GatewayResponse:
    body = json.dumps({"message": message}).encode()
    return GatewayResponse(status, [("Content-Type", "application/json")], body)


class StageThrottle:
    """API Gateway's stage throttling: a token bucket of `burst` tokens refilled at `rate` a second, one
    taken by every request, whichever its route or caller."""

    def __init__(self, rate: float, burst: int, monotonic: Callable[[], float] = time.monotonic):
        self._rate = rate
        self._burst = burst
        self._monotonic = monotonic
        self._tokens = float(burst)
        self._updated = monotonic()
        self._lock = threading.Lock()

    def admit(self) -> bool:
        with self._lock:
            now = self._monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str


class Gateway:
    """Matches a request to a template route, runs its authorizer, then its function."""

    def __init__(
        self,
        routes: list[tuple[RouteSpec, Function]],
        authorizers: dict[str, Function],
        throttle: StageThrottle | None = None,
    ):
        self._routes = routes
        self._authorizers = authorizers
        self._throttle = throttle

    def handle(self, request: HttpRequest) -> GatewayResponse:
        if self._throttle and not self._throttle.admit():
            return _gateway_message(429, "Too Many Requests")
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return _gateway_message(413, "Request Entity Too Large")
        path = urlsplit(request.target).path
        matched = self._match(request.method, path)
        if matched is None:
            return _gateway_message(404, "Not Found")
        route, function, path_parameters = matched
        event = _request_event(request, route, path_parameters)
        if route.authorizer_function:
            try:
                verdict = self._authorizers[route.authorizer_function].invoke(_authorizer_event(event))
            except Exception:
                _log.exception("authorizer %s failed", route.authorizer_function)
                return _gateway_message(500, "Internal Server Error")
            if not (isinstance(verdict, dict) and verdict.get("isAuthorized") is True):
                return _gateway_message(403, "Forbidden")
            event["requestContext"]["authorizer"] = {"lambda": verdict.get("context") or {}}
        payload_bytes = len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        if payload_bytes > LAMBDA_SYNC_PAYLOAD_BYTES:
            _log.warning(
                "function %s not invoked: its event is %d bytes, Lambda takes at most %d",
                function.spec.logical_id,
                payload_bytes,
                LAMBDA_SYNC_PAYLOAD_BYTES,
            )
            return _gateway_message(500, "Internal Server Error")
        try:
            result = function.invoke(event)
        except Exception:
            _log.exception("function %s failed", function.spec.logical_id)
            return _gateway_message(500, "Internal Server Error")
        return _response(result)

    def _match(self, method: str, path: str) -> tuple[RouteSpec, Function, dict[str, str]] | None:
        for route, function in self._routes:
            if route.method not in ("ANY", method):
                continue
            match = route.pattern.match(path)
            if match:
                names = [part.strip("{}+") for part in route.path.split("/") if part.startswith("{")]
                return route, function, dict(zip(names, match.groups(), strict=True))
        return None


def _request_event(request: HttpRequest, route: RouteSpec, path_parameters: dict[str, str]) -> dict[str, Any]:
    target = urlsplit(request.target)
    headers: dict[str, str] = {}
    for name, value in request.headers:
        # API Gateway lower-cases header names and joins repeated headers with commas.
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    # API Gateway says how the client reached it; here always plain HTTP.
    headers["x-forwarded-proto"] = "http"
    query: dict[str, str] = {}
    for name, value in parse_qsl(target.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    try:
        body: str | None = request.body.decode("utf-8") if request.body else None
        is_base64 = False
    except UnicodeDecodeError:
        body, is_base64 = base64.b64encode(request.body).decode("ascii"), True
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": target.path,
        "rawQueryString": target.query,
        "headers": headers,
        "requestContext": {
            "accountId": "local",
            "apiId": _API_ID,
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": _API_ID,
            "http": {
                "method": request.method,
                "path": target.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if "cookie" in headers:
        event["cookies"] = [cookie.strip() for cookie in headers.pop("cookie").split(";")]
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body is not None:
        event["body"] = body
    return event


def _authorizer_event(request_event: dict[str, Any]) -> dict[str, Any]:
    event = {key: value for key, value in request_event.items() if key not in ("body", "isBase64Encoded", "version")}
    return {
        **event,
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": f"arn:aws:execute-api:local:local:{_API_ID}/$default/{request_event['routeKey'].replace(' ', '')}",
        "identitySource": [],
    }


def _response(result: Any) -> GatewayResponse:
    # A payload 2.0 result without statusCode is sent as a 200 JSON body, as API Gateway does.
    if not (isinstance(result, dict) and "statusCode" in result):
        return GatewayResponse(200, [("Content-Type", "application/json")], json.dumps(result).encode())
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
    headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
    return GatewayResponse(int(result["statusCode"]), headers, raw)


class _GatewayHttpRequest(Request):
    # One byte more than API Gateway takes: werkzeug stops reading a chunked body at this limit
    # without saying so, and Gateway.handle refuses a body that reaches it.
    max_content_length = MAX_PAYLOAD_BYTES + 1


class _GatewayHttpResponse(Response):
    # API Gateway adds no Content-Type to a function's response that sets none.
    default_mimetype = None


class _RequestLog(WSGIRequestHandler):
    """werkzeug's request handler, logging to the gateway's logger (werkzeug's own is moto's too) in plain text."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        _log.info('%s "%s" %s', self.address_string(), self.requestline, code)

    def log(self, type: str, message: str, *args: Any) -> None:
        _log.info("%s %s: %s", self.address_string(), type, message % args)


def _wsgi_app(gateway: Gateway) -> "WSGIApplication":
    """The gateway as a WSGI application: every method, chunked or sized bodies up to 10 MB."""

    @_GatewayHttpRequest.application
    def serve(request: Request) -> Response:
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            answer = _gateway_message(413, "Request Entity Too Large")
        else:
            answer = gateway.handle(
                HttpRequest(
                    method=request.method,
                    target=request.environ["REQUEST_URI"],
                    headers=list(request.headers.items()),
                    body=body,
                    source_ip=request.remote_addr or "",
                )
            )
        return _GatewayHttpResponse(answer.body, answer.status, answer.headers)

    return serve


class GatewayServer:
    """The gateway on host:port (0: any free port), served by werkzeug on threads of its own."""

    def __init__(self, host: str, port: int, gateway: Gateway):
        self._server = make_server(host, port, _wsgi_app(gateway), threaded=True, request_handler=_RequestLog)
        self._thread = threading.Thread(target=self._server.serve_forever, name="gateway", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
