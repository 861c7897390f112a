"""The one address check of hookrelay: which endpoints it may call (SPEC §5).

The API vets an endpoint with it when a subscription is created or updated; the delivery transport
vets again at send time and connects to the addresses it returns, so a name that resolves to a
private address later (DNS rebinding) is refused too.
"""

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote_plus, urlsplit

from hookrelay.credentials import MASK, names_a_query_credential
from hookrelay.host_names import ascii_host
from hookrelay.payloads import chat_service

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

_NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
# Not globally reachable, yet global to Python's ipaddress (3.13): IPv6 site-local (RFC 3879, still
# routed inside sites that use it), the IPv6 documentation prefix of RFC 9637, and the deprecated 6to4
# relay anycast prefix (RFC 7526).
_NOT_GLOBAL_FOR_IANA_ONLY: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.IPv6Network("fec0::/10"),
    ipaddress.IPv6Network("3fff::/20"),
    ipaddress.IPv4Network("192.88.99.0/24"),
)
# 443, or a port no system service binds to; 80 only for plain http, where that is allowed at all.
_UNPRIVILEGED_PORTS = range(1024, 65536)


class EndpointRefused(ValueError):
    """The endpoint may not be called; the message says why, in words fit for an API error."""


class ResolvesToNonPublic(EndpointRefused):
    """The endpoint's host name resolves to an address that may not be called. The message names that
    address, for the delivery log of the tenant's own endpoint; the API says only `public_reason`, so
    that creating subscriptions is no way to look up what names resolve to where hookrelay runs."""

    def __init__(self, host: str, reason: str):
        super().__init__(reason)
        self.public_reason = f"host {host} does not resolve to a public address"


@dataclass(frozen=True)
class Endpoint:
    url: str
    scheme: str
    # The host as it goes on the wire (looked up, vetted, in Host and TLS): an internationalised name in
    # its ASCII form (`xn--r8jz45g.jp` for `例え.jp`), the URL keeping it as written.
    host: str
    port: int


def parse_endpoint(url: str, *, allow_plain_http: bool) -> Endpoint:
    """Check the shape of an endpoint URL: absolute, https (or http when allowed), with a host (one IDNA
    can write in ASCII), on an allowed port."""
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise EndpointRefused(f"is not a valid URL: {error}") from None
    allowed_schemes = ("https", "http") if allow_plain_http else ("https",)
    if parts.scheme not in allowed_schemes:
        raise EndpointRefused("must be an https:// URL")
    if not parts.hostname:
        raise EndpointRefused("must name a host")
    if any(character.isspace() for character in url):
        raise EndpointRefused("must not contain white space")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    if not (port == 443 or port in _UNPRIVILEGED_PORTS or (port == 80 and parts.scheme == "http")):
        allowed = "443 or 1024-65535" + (" (80 for http://)" if allow_plain_http else "")
        raise EndpointRefused(f"must use port {allowed}, not {port}")
    return Endpoint(url=url, scheme=parts.scheme, host=_ascii_host(parts.hostname), port=port)


def _ascii_host(host: str) -> str:
    try:
        return ascii_host(host)
    except ValueError as error:
        raise EndpointRefused(f"has a host name that is not a valid internationalised domain name ({error})") from None


def same_origin(url: str, other: str) -> bool:
    """Whether two endpoints' requests go to the same scheme, host and port (their origin, RFC 6454):
    whom a credential written for one of them was meant for. An endpoint that is no longer valid (stored
    under an earlier release's rules) has no origin in common with any."""
    try:
        first, second = (parse_endpoint(each, allow_plain_http=True) for each in (url, other))
    except EndpointRefused:
        return False
    return (first.scheme, first.host, first.port) == (second.scheme, second.host, second.port)


def has_credentials(url: str) -> bool:
    """Whether the endpoint carries a user name, which the transport sends as basic authentication."""
    return bool(urlsplit(url).username)


def masked(url: str) -> str:
    """The endpoint as hookrelay shows it (responses, delivery log, logs): the secrets in it hidden.

    Its credentials (`https://user:pass@host/` as `https://user:***@host/`; a user name alone, often a token,
    as `***`), the token in a Slack or Discord webhook's path (`https://hooks.slack.com/services/T0/B0/***`)
    and the values of query parameters named as credentials, as custom headers are (`?access_token=***`),
    or that are one by their whole name (Azure Functions' `?code=***`).
    The stored endpoint keeps them, and they are sent. Each shows as `***` alone: a URL shown is shown as
    itself, and a client that writes it back can be told from one that wrote its secrets (`holds_a_mask`).
    """
    pieces = _pieces(url)
    if not any(is_secret for _, is_secret in pieces):
        return url
    return "".join(MASK if is_secret else text for text, is_secret in pieces)


def holds_a_mask(url: str) -> bool:
    """Whether the URL has `***` where a secret goes: copied from a response, it holds no secret to send."""
    return any(is_secret and text == MASK for text, is_secret in _pieces(url))


def _pieces(url: str) -> list[tuple[str, bool]]:
    """The URL cut around its secrets, each piece with whether it is one: joined, they are the URL."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    pieces = [(f"{parts.scheme}://", False)]
    if at:
        pieces += [(user + colon, False), (password, True)] if colon else [(user, True)]
    pieces.append((at + host, False))
    segments = parts.path.split("/")
    token_at = _token_segment(url, segments)
    for index, segment in enumerate(segments):
        if index:
            pieces.append(("/", False))
        pieces.append((segment, index == token_at))
    if parts.query:
        pieces.append(("?", False))
        for index, parameter in enumerate(parts.query.split("&")):
            name, equals, value = parameter.partition("=")
            if index:
                pieces.append(("&", False))
            pieces += [(name + equals, False), (value, bool(equals) and names_a_query_credential(unquote_plus(name)))]
    if parts.fragment:
        pieces.append(("#" + parts.fragment, False))
    return pieces


def _token_segment(url: str, segments: list[str]) -> int | None:
    """Which segment of the path (split at `/`) is a chat webhook's posting credential, if any: Discord's
    after `/api/webhooks/<id>/` (or `/api/v10/webhooks/<id>/`), Slack's the last (`/services/T0/B0/<token>`,
    `/triggers/T0/1/<token>`)."""
    match chat_service(url):
        case "discord":  # "webhooks", the webhook's id, then its token
            return segments.index("webhooks") + 2
        case "slack":
            return max((index for index, segment in enumerate(segments) if segment), default=None)
    return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:
        return ipaddress.IPv4Address(int(address))
    return None


def refusal_reason(address: IPAddress) -> str | None:
    """Why hookrelay must not connect to this address, or None when it is publicly routable."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = refusal_reason(inner)
            return f"embeds {inner}, which {reason}" if reason else None
    if address.is_loopback:
        return "is a loopback address"
    if address.is_link_local:
        return "is a link-local address (this includes cloud metadata services)"
    if address.is_multicast:
        return "is a multicast address"
    if address.is_unspecified:
        return "is the unspecified address"
    if address.is_private:
        return "is a private address"
    if address.is_reserved or not address.is_global or any(address in net for net in _NOT_GLOBAL_FOR_IANA_ONLY):
        return "is not a globally routable address"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def vet_addresses(endpoint: Endpoint, resolver: Resolver = resolve) -> list[str]:
    """Resolve the endpoint's host and return its addresses, refusing if any is not public.

    Every address must pass, not just one: a client may connect to any of them. Raises
    socket.gaierror when the name does not resolve, which callers treat differently (accepted at
    subscription time, a failed attempt at send time).
    """
    # "name." is the absolute spelling of "name" ("localhost.", "127.0.0.1."): resolve it as such.
    host = endpoint.host.removesuffix(".")
    literal = ip_literal(host)
    # An address literal is judged as written, even when it does not resolve (an unknown IPv6 zone id).
    reason = refusal_reason(literal) if literal else None
    if reason:
        raise EndpointRefused(f"host {endpoint.host} {reason}")
    addresses = resolver(host, endpoint.port)
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        reason = refusal_reason(address)
        if reason:
            if endpoint.host == text:
                raise EndpointRefused(f"host {endpoint.host} {reason}")
            raise ResolvesToNonPublic(endpoint.host, f"host {endpoint.host} resolves to {text}, which {reason}")
    return addresses


def ip_literal(host: str) -> IPAddress | None:
    """The address a host names when it is written as one (an IPv4 or IPv6 literal), else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
