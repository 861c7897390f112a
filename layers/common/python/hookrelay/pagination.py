"""Opaque list cursors: what a client passes back as `after` to read the next page."""

import base64
import binascii
import json
from typing import Any

from hookrelay.errors import FieldError, Invalid

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def encode_cursor(position: dict[str, str]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def not_a_cursor(param: str) -> Invalid:
    return Invalid(FieldError(param, "is not a cursor returned by this list"))


def decode_cursor(cursor: str, keys: frozenset[str], param: str = "query.after") -> dict[str, str]:
    """The position a cursor names; Invalid on `param` for anything this API did not hand out."""
    try:
        position: Any = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        position = None
    if not (
        isinstance(position, dict)
        and set(position) == keys
        and all(isinstance(value, str) and value for value in position.values())
    ):
        raise not_a_cursor(param)
    return position
