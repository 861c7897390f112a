"""How deep a JSON document nests, read from its bytes before any parser recurses into it (SPEC §2)."""

import json
import re

# Objects and arrays, the body itself being level 1: `{"data": {}}` is two levels deep.
MAX_JSON_DEPTH = 32
# The only bytes that can change the nesting: brackets, and what starts, ends or escapes a string.
_NESTING_BYTES = re.compile(rb'[][{}"\\]')
_OPENING = frozenset(b"[{")
_CLOSING = frozenset(b"]}")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_MAX_NAME_CHARACTERS = 100


def too_deeply_nested(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """The top-level field of a JSON body nested deeper than `max_depth`, or None when it is not.

    Read from the raw bytes in one pass, before any parser sees them (a parser recurses once per level),
    skipping brackets inside strings. A body that crosses the limit outside any field is named "body".
    """
    depth = 0
    in_string = False
    escaped = -1
    last_string = field = (0, 0)
    for match in _NESTING_BYTES.finditer(body):
        position = match.start()
        byte = body[position]
        if position == escaped:
            continue
        if in_string:
            if byte == _BACKSLASH:
                escaped = position + 1
            elif byte == _QUOTE:
                in_string = False
                last_string = (last_string[0], position + 1)
        elif byte == _QUOTE:
            in_string = True
            last_string = (position, position)
        elif byte in _OPENING:
            if depth == 1:
                # The member this value belongs to: the string just before it is its key.
                field = last_string
            depth += 1
            if depth > max_depth:
                return _field_name(body[slice(*field)])
        elif byte in _CLOSING:
            depth = max(depth - 1, 0)
    return None


def _field_name(key: bytes) -> str:
    try:
        name = json.loads(key)
    except ValueError:
        return "body"
    # The name is the client's: long enough to recognise, not to fill a log line.
    return name[:_MAX_NAME_CHARACTERS] if isinstance(name, str) and name else "body"
