"""The one way hookrelay sends a webhook: SSRF-checked, pinned to the vetted address, never redirected.

The endpoint's host is resolved and vetted by hookrelay.addresses at every send; the connection
goes to that address (no second lookup, so DNS rebinding cannot swap in a private one) while TLS
still sends SNI for, and verifies the certificate against, the hostname. Connect timeout 5 s, 15 s
for the whole exchange (the delivery function passes HOOKRELAY_SEND_CONNECT_TIMEOUT_SECONDS and
HOOKRELAY_SEND_TIMEOUT_SECONDS), at most `max_response_bytes` of the answer read. One keep-alive
session per container.
"""

import ipaddress
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from hookrelay.addresses import Endpoint, EndpointRefused, Resolver, parse_endpoint, resolve, vet_addresses

CONNECT_TIMEOUT_SECONDS = 5.0
TOTAL_TIMEOUT_SECONDS = 15.0
MAX_RESPONSE_BYTES = 64 * 1024
EXCERPT_BYTES = 1024
_PINNED_HOST = "X-Hookrelay-Pinned-Host"


@dataclass(frozen=True)
class SendResult:
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


class _PinnedAddressAdapter(HTTPAdapter):
    """Connects to the URL's address (an IP) but does TLS for the hostname the transport vetted."""

    def get_connection_with_tls_context(
        self, request: requests.PreparedRequest, verify: Any, proxies: Any = None, cert: Any = None
    ) -> Any:
        hostname = request.headers.pop(_PINNED_HOST)
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        tls: dict[str, Any] = dict(pool_kwargs)
        if host_params["scheme"] == "https":
            tls.update(server_hostname=hostname, assert_hostname=hostname)
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=tls)


class Transport:
    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = resolve,
        verify: bool | str = True,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        total_timeout: float = TOTAL_TIMEOUT_SECONDS,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ):
        self._allow_private = allow_private
        self._resolver = resolver
        self._verify = verify
        self._connect_timeout = connect_timeout
        self._total_timeout = total_timeout
        self._max_response_bytes = max_response_bytes
        self._session = requests.Session()
        # Proxies from the environment would connect elsewhere than the vetted address.
        self._session.trust_env = False
        adapter = _PinnedAddressAdapter(pool_connections=32, pool_maxsize=32, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        started = time.monotonic()
        try:
            endpoint = parse_endpoint(url, allow_plain_http=self._allow_private)
        except EndpointRefused as refusal:
            return SendResult(None, _elapsed_ms(started), error=f"refused: endpoint {refusal}")
        try:
            if self._allow_private:
                addresses = self._resolver(endpoint.host, endpoint.port)
            else:
                addresses = vet_addresses(endpoint, self._resolver)
        except EndpointRefused as refusal:
            return SendResult(None, _elapsed_ms(started), error=f"refused: endpoint {refusal}")
        except (socket.gaierror, UnicodeError) as error:
            return SendResult(None, _elapsed_ms(started), error=f"dns: {endpoint.host} does not resolve ({error})")
        return self._send(endpoint, addresses[0], body, headers, started)

    def _send(
        self, endpoint: Endpoint, address: str, body: bytes, headers: Mapping[str, str], started: float
    ) -> SendResult:
        scheme, host, port = endpoint.scheme, endpoint.host, endpoint.port
        target = _url_for_address(endpoint.url, scheme, address, port)
        parts = urlsplit(endpoint.url)
        auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
        default_port = 443 if scheme == "https" else 80
        sent_headers = {
            **headers,
            "Host": host if port == default_port else f"{host}:{port}",
            _PINNED_HOST: host,
        }
        try:
            response = self._session.post(
                target,
                data=body,
                headers=sent_headers,
                auth=auth,
                timeout=(self._connect_timeout, self._total_timeout),
                allow_redirects=False,
                stream=True,
                verify=self._verify,
            )
        except requests.exceptions.ConnectTimeout:
            return SendResult(None, _elapsed_ms(started), error="timeout: connect", timed_out=True)
        except requests.exceptions.ReadTimeout:
            return SendResult(None, _elapsed_ms(started), error="timeout: no answer", timed_out=True)
        except requests.exceptions.SSLError as error:
            return SendResult(None, _elapsed_ms(started), error=f"tls: {_reason(error)}")
        except requests.exceptions.RequestException as error:
            return SendResult(None, _elapsed_ms(started), error=f"connection: {_reason(error)}")
        with response:
            content, timed_out = self._read(response, started)
        excerpt = content[:EXCERPT_BYTES].decode("utf-8", errors="replace")
        if timed_out:
            return SendResult(None, _elapsed_ms(started), excerpt, error="timeout: answer too slow", timed_out=True)
        redirect = f"redirect: {response.status_code} not followed" if 300 <= response.status_code < 400 else None
        return SendResult(
            response.status_code,
            _elapsed_ms(started),
            excerpt,
            error=redirect,
            retry_after=response.headers.get("Retry-After"),
        )

    def _read(self, response: requests.Response, started: float) -> tuple[bytes, bool]:
        """Read at most max_response_bytes of the answer, within the total timeout."""
        content = b""
        try:
            for chunk in response.iter_content(chunk_size=4096):
                content += chunk
                if len(content) >= self._max_response_bytes:
                    break
                if time.monotonic() - started > self._total_timeout:
                    return content, True
        except requests.exceptions.RequestException:
            return content, time.monotonic() - started > self._total_timeout
        return content, False


def _url_for_address(url: str, scheme: str, address: str, port: int) -> str:
    parts = urlsplit(url)
    is_ipv6 = isinstance(ipaddress.ip_address(address.split("%", maxsplit=1)[0]), ipaddress.IPv6Address)
    literal = f"[{address}]" if is_ipv6 else address
    return urlunsplit((scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))


def _reason(error: Exception) -> str:
    return str(error).rpartition("(Caused by")[2].strip(" )")[:300] or type(error).__name__


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
