"""A subscription's custom request headers: which a tenant may set, and how they join hookrelay's own.

Values are tenant secrets as often as not (`Authorization: Bearer ...`): they are stored and sent, never
logged, and no refusal quotes them. A sensitive one (a credential by its name, or one the tenant lists in
the subscription's `sensitive_headers`) is write-only: every read shows it masked (`shown`), and a write
of the masked value back keeps the stored one (`kept`). A write that keeps a value it does not write may
not make it readable or move the endpoint it goes to (`check_unseen_values_stay_hidden`).
"""

import re
from collections.abc import Collection, Mapping
from typing import Final

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from hookrelay.credentials import CREDENTIAL_WORDS, MASK, names_a_credential
from hookrelay.errors import FieldError, Invalid, field_path

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
# Headers whose values are credentials by their name (case-insensitive), as Svix masks them.
_CREDENTIAL_NAMES: Final = frozenset({"authorization", "proxy-authorization", "cookie"})
# A masked value ends with the value's last characters only when they are a small part of it.
_SHOWN_TAIL = 4
_LEAST_LENGTH_WITH_TAIL = 12
SENSITIVE_DESCRIPTION: Final = (
    "Authorization, Proxy-Authorization, Cookie, names containing "
    + ", ".join(CREDENTIAL_WORDS[:-1])
    + f" or {CREDENTIAL_WORDS[-1]} (case-insensitive), and those named in sensitive_headers"
)
RESERVED_DESCRIPTION: Final = (
    ", ".join(f"{prefix}*" for prefix in _RESERVED_PREFIXES) + " and " + ", ".join(sorted(_RESERVED_NAMES))
)


def _refusal(name: str) -> str | None:
    if not _TOKEN.fullmatch(name):
        return "is not a header name: use letters, digits and !#$%&'*+-.^_`|~ only"
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    # Receivers that read headers as CGI variables (WSGI, PHP, Rack) take `_` for `-`: Webhook_Signature
    # would reach them as webhook-signature.
    as_cgi_reads_it = name.lower().replace("_", "-")
    if as_cgi_reads_it in _RESERVED_NAMES or as_cgi_reads_it.startswith(_RESERVED_PREFIXES):
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


def is_sensitive(name: str, marked: Collection[str]) -> bool:
    """Whether a header's value is write-only: a credential by its name, or marked so by the tenant."""
    lowered = name.lower()
    return lowered in _CREDENTIAL_NAMES or names_a_credential(name) or lowered in {each.lower() for each in marked}


def masked_value(value: str) -> str:
    """`***` and the value's last 4 characters (`***` alone for a value shorter than 12)."""
    return MASK + (value[-_SHOWN_TAIL:] if len(value) >= _LEAST_LENGTH_WITH_TAIL else "")


def shown(headers: Mapping[str, str], marked: Collection[str]) -> dict[str, str]:
    """The headers as every read shows them: sensitive values masked."""
    return {name: masked_value(value) if is_sensitive(name, marked) else value for name, value in headers.items()}


def kept(written: Mapping[str, str], stored: Mapping[str, str], marked: Collection[str]) -> dict[str, str]:
    """The headers a write stores: a sensitive header written back as it was shown (read, edit, write)
    keeps its stored value, which the client never saw."""
    return {**written, **_written_back(written, stored, marked)}


def _written_back(written: Mapping[str, str], stored: Mapping[str, str], marked: Collection[str]) -> dict[str, str]:
    """The sensitive headers a write gives their masked value, each with its stored value."""
    stored_by_name = {name.lower(): value for name, value in stored.items()}
    return {
        name: before
        for name, value in written.items()
        if (before := stored_by_name.get(name.lower())) is not None
        and is_sensitive(name, marked)
        and value == masked_value(before)
    }


def check_unseen_values_stay_hidden(
    written: Mapping[str, str] | None,
    stored: Mapping[str, str],
    *,
    marked_before: Collection[str],
    marked_after: Collection[str],
    endpoint_moved: bool,
) -> None:
    """Refuse, Invalid on `headers.<name>`, a write that keeps a write-only value it does not write (it
    leaves the headers out, `written` None, or writes the value back masked) where the value would no
    longer be write-only, or with the endpoint moved to another origin: the client never saw the value, so
    it may neither read it nor send it to a host it was not written for."""
    unseen = _written_back(shown(stored, marked_before) if written is None else written, stored, marked_before)
    refusals = [
        FieldError(field_path(("headers", name)), f"{name} {reason}")
        for name in unseen
        if (reason := _unseen_value_refusal(is_sensitive(name, marked_after), endpoint_moved))
    ]
    if refusals:
        raise Invalid(*refusals)


def _unseen_value_refusal(still_sensitive: bool, endpoint_moved: bool) -> str | None:
    if not still_sensitive:
        return (
            "is write-only and would be shown once no longer sensitive: write its new value in headers in the"
            " same request (not the masked one), or remove the header"
        )
    if endpoint_moved:
        return (
            "is write-only and was written for the endpoint's current scheme, host and port: to send it to the"
            " new endpoint, write its value again in headers in the same request (not the masked one), or"
            " remove the header"
        )
    return None


def checked_names(names: list[str]) -> list[str]:
    """Header names a tenant marks sensitive: HTTP tokens, at most MAX_HEADERS."""
    errors = [
        _error(name, "is not a header name: use letters, digits and !#$%&'*+-.^_`|~ only")
        for name in names
        if not _TOKEN.fullmatch(name)
    ]
    if errors:
        raise ValidationError.from_exception_data("sensitive_headers", errors)
    return names
