"""The one address check of hookrelay: which endpoints it may call (SPEC §5).

The API vets an endpoint with it when a subscription is created or updated; the delivery transport
vets again at send time and connects to the addresses it returns, so a name that resolves to a
private address later (DNS rebinding) is refused too.
"""

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

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
    host: str
    port: int


def parse_endpoint(url: str, *, allow_plain_http: bool) -> Endpoint:
    """Check the shape of an endpoint URL: absolute, https (or http when allowed), with a host, on an allowed port."""
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
    return Endpoint(url=url, scheme=parts.scheme, host=parts.hostname, port=port)


def same_origin(url: str, other: str) -> bool:
    """Whether two endpoints' requests go to the same scheme, host and port (their origin, RFC 6454):
    whom a credential written for one of them was meant for."""
    first, second = (parse_endpoint(each, allow_plain_http=True) for each in (url, other))
    return (first.scheme, first.host, first.port) == (second.scheme, second.host, second.port)


def has_credentials(url: str) -> bool:
    """Whether the endpoint carries a user name, which the transport sends as basic authentication."""
    return bool(urlsplit(url).username)


def masked(url: str) -> str:
    """The endpoint as hookrelay shows it (responses, delivery log, logs): credentials in it hidden.

    `https://user:pass@host/` shows as `https://user:***@host/`; a user name alone, often a token, as `***`.
    The stored endpoint keeps them: the transport sends them as basic authentication.
    """
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}" if colon else f"***@{host}"))


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
