"""A small client for the hookrelay HTTP API, over any transport the test layer provides."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

NO_KEY = ""


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


Transport = Callable[[str, str, dict[str, str], bytes], ApiResponse]


@dataclass
class ApiClient:
    """Requests as one team: `key` is sent as a bearer token unless a request overrides it."""

    transport: Transport
    key: str
    default_headers: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        key: str | None = None,
    ) -> ApiResponse:
        sent = {**self.default_headers, **(headers or {})}
        bearer = self.key if key is None else key
        if bearer:
            sent.setdefault("Authorization", f"Bearer {bearer}")
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        return self.transport(method, path, sent, body or b"")

    def get(self, path: str, **options: Any) -> ApiResponse:
        return self.request("GET", path, **options)

    def post(self, path: str, json_body: Any = None, **options: Any) -> ApiResponse:
        return self.request("POST", path, json_body=json_body, **options)

    def patch(self, path: str, json_body: Any = None, **options: Any) -> ApiResponse:
        return self.request("PATCH", path, json_body=json_body, **options)

    def delete(self, path: str, **options: Any) -> ApiResponse:
        return self.request("DELETE", path, **options)
