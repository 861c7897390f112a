"""A subscription's custom request headers: which a tenant may set, and how they join hookrelay's own.

Values are tenant secrets as often as not (`Authorization: Bearer ...`): they are stored, shown to the
tenant (the subscription and the delivery detail) and sent, never logged, and no refusal quotes them.
"""

import re
from collections.abc import Mapping
from typing import Final

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

MAX_HEADERS: Final = 20
MAX_NAME_LENGTH: Final = 256
MAX_VALUE_BYTES: Final = 1024

# RFC 9110 §5.6.2: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Visible ASCII with spaces inside: what http.client sends unchanged. Control characters would split
# or end the header (CR, LF, NUL); leading or trailing white space is no part of a value (receivers
# drop it, RFC 9110 §5.5); other bytes are obsolete in HTTP and sent as latin-1 if at all.
_VALUE = re.compile(r"([!-~]([ -~]*[!-~])?)?")
# Names hookrelay sets (signatures, ids, its test marker and transport internals) or that belong to the
# connection and the body's framing, which the transport owns: a tenant's value could forge a signature
# or break the request.
_RESERVED_PREFIXES: Final = ("webhook-", "x-yousign-", "x-webhook-", "x-hookrelay-", "proxy-")
_RESERVED_NAMES: Final = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "accept-encoding",
        "user-agent",
    }
)
RESERVED_DESCRIPTION: Final = (
    ", ".join(f"{prefix}*" for prefix in _RESERVED_PREFIXES) + " and " + ", ".join(sorted(_RESERVED_NAMES))
)


def _refusal(name: str) -> str | None:
    lowered = name.lower()
    if not _TOKEN.fullmatch(name):
        return "is not a header name: use letters, digits and !#$%&'*+-.^_`|~ only"
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    if lowered in _RESERVED_NAMES or lowered.startswith(_RESERVED_PREFIXES):
        return "is set by hookrelay or its transport and cannot be replaced"
    return None


def _value_refusal(value: str) -> str | None:
    if len(value) > MAX_VALUE_BYTES:
        return f"has a value longer than {MAX_VALUE_BYTES} bytes"
    if not _VALUE.fullmatch(value):
        return "has a value that is not visible ASCII characters with spaces only between them (no control characters)"
    return None


def checked(headers: dict[str, str]) -> dict[str, str]:
    """The headers if a tenant may send them all, else every refusal at `<name>` under the field."""
    errors: list[InitErrorDetails] = []
    seen: dict[str, str] = {}
    for name, value in headers.items():
        reason = _refusal(name) or _value_refusal(value)
        if reason is None and (first := seen.setdefault(name.lower(), name)) != name:
            reason = f"is the same header as {first} (header names are case-insensitive)"
        if reason:
            errors.append(_error(name, reason))
    if errors:
        raise ValidationError.from_exception_data("headers", errors)
    return headers


def check_authorization(headers: Mapping[str, str], *, endpoint_has_credentials: bool) -> None:
    """Refuse a custom Authorization header beside credentials in the endpoint, which also set it."""
    for name in headers:
        if name.lower() == "authorization" and endpoint_has_credentials:
            reason = "is also set by the credentials in the endpoint's URL (basic authentication): keep one of them"
            raise ValidationError.from_exception_data("headers", [_error(name, reason, ("headers", name))])


def _error(name: str, reason: str, location: tuple[str, ...] | None = None) -> InitErrorDetails:
    # No `input`: the value may be a secret, and the name alone says which header is refused.
    return InitErrorDetails(
        type=PydanticCustomError("header", "{name} {reason}", {"name": name, "reason": reason}),
        loc=location or (name,),
        input=None,
    )
