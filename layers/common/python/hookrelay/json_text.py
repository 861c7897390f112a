"""JSON that every later step (EventBridge, SQS, DynamoDB, a receiver's strict parser) carries unchanged.

Python's JSON parser reads more than JSON: `NaN`, `Infinity` and `-Infinity`, and numbers beyond a double's
range (`1e400`) as infinities; none can be written back as JSON. A \\u escape of half a UTF-16 surrogate
pair, alone, parses into a string that no later step can encode.
"""

import json
import math
import re
import sys

# A \u escape of a surrogate: in a pair it is one character, alone it is none that UTF-8 holds.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class NotJsonNumber(ValueError):
    """A number no JSON writer can write back; the text says which."""


def _refuse_constant(constant: str) -> float:
    raise NotJsonNumber(f"{constant} is not a JSON number")


_BEYOND_A_DOUBLE = "a number is beyond ±1.8e308, the range of a double"
# The fewest digits of an integer beyond a double's range (its largest has 309).
_DIGITS_OF_THE_LARGEST_DOUBLE = 309
# What a number beyond a double's range holds: that many digits in a row, or an exponent of 100 or more.
_MAY_PASS_A_DOUBLE = re.compile(rf"\d{{{_DIGITS_OF_THE_LARGEST_DOUBLE}}}|[eE]\+?0*[1-9]\d{{2}}")


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise NotJsonNumber(_BEYOND_A_DOUBLE)
    return number


def _within_a_double(text: str) -> int:
    """An integer that a receiver's double (JavaScript's numbers, Go's float64) holds, if only roughly."""
    number = int(text)
    if len(text.lstrip("-")) >= _DIGITS_OF_THE_LARGEST_DOUBLE and abs(number) > sys.float_info.max:
        raise NotJsonNumber(_BEYOND_A_DOUBLE)
    return number


def dumps(value: object) -> str:
    """`value` as compact JSON, characters unescaped: ValueError for a number no JSON parser reads back
    (an infinity or NaN), which must never reach a receiver or a store."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def loads(text: str) -> object:
    """The value of the JSON `text`: ValueError if it is not JSON, NotJsonNumber if it holds a number
    that could not be written back."""
    if not _MAY_PASS_A_DOUBLE.search(text):  # the checks below call Python for every number
        return json.loads(text, parse_constant=_refuse_constant)
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite, parse_int=_within_a_double)


def holds_unpaired_surrogate(text: str, parsed: object) -> bool:
    """Whether `parsed`, read from the JSON `text`, holds a string with an unpaired surrogate."""
    if not _SURROGATE_ESCAPE.search(text):
        return False
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
