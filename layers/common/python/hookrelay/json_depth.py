"""How deep a JSON document nests, read from its bytes before any parser recurses into it (SPEC §2)."""

import json
import re

# Objects and arrays, the body itself being level 1: `{"data": {}}` is two levels deep.
MAX_JSON_DEPTH = 32
# The only bytes that can change the nesting: brackets, and the quote that starts a string.
_NESTING_BYTES = re.compile(rb'[][{}"]')
# The rest of a string after its opening quote, to its closing one (possessive: no backtracking).
_STRING_REST = re.compile(rb'(?:[^"\\]++|\\.)*+"', re.DOTALL)
_OPENING = frozenset(b"[{")
_QUOTE = ord('"')
_MAX_NAME_CHARACTERS = 100


def too_deeply_nested(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """The top-level field of a JSON body nested deeper than `max_depth`, or None when it is not.

    Read from the raw bytes in one pass, before any parser sees them (a parser recurses once per level),
    skipping strings (their brackets, and quotes they escape). A body that crosses the limit outside any
    field is named "body"; nothing after a string left open nests.
    """
    depth = 0
    last_string = field = (0, 0)
    position = 0
    while match := _NESTING_BYTES.search(body, position):
        start = position = match.end()
        byte = body[match.start()]
        if byte == _QUOTE:
            string = _STRING_REST.match(body, start)
            if string is None:
                return None
            last_string, position = (match.start(), string.end()), string.end()
        elif byte in _OPENING:
            if depth == 1:
                # The member this value belongs to: the string just before it is its key.
                field = last_string
            depth += 1
            if depth > max_depth:
                return _field_name(body[slice(*field)])
        else:
            depth = max(depth - 1, 0)
    return None


def _field_name(key: bytes) -> str:
    try:
        name = json.loads(key)
    except ValueError:
        return "body"
    # The name is the client's: long enough to recognise, not to fill a log line.
    return name[:_MAX_NAME_CHARACTERS] if isinstance(name, str) and name else "body"
