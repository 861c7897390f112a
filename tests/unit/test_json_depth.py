"""The nesting check the API and ingest make on raw JSON before any parser sees it."""

import json
import time

import pytest

from hookrelay.http_api import MAX_BODY_BYTES
from hookrelay.json_depth import MAX_JSON_DEPTH, too_deeply_nested


def nested_objects(depth: int) -> str:
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


def test_the_body_is_level_one_and_32_levels_pass() -> None:
    assert too_deeply_nested(b"{}") is None
    assert too_deeply_nested(nested_objects(MAX_JSON_DEPTH).encode()) is None
    assert too_deeply_nested(nested_objects(MAX_JSON_DEPTH + 1).encode()) == "a"


def test_the_field_named_is_the_top_level_member_that_nests_too_deep() -> None:
    body = {"event_name": "signer.done", "shallow": [[1]], 'data\u00e9 "x"': json.loads(nested_objects(40))}
    assert too_deeply_nested(json.dumps(body).encode()) == 'data\u00e9 "x"'
    assert too_deeply_nested(json.dumps(body, ensure_ascii=False).encode()) == 'data\u00e9 "x"'


def test_a_long_field_name_is_shortened_when_named() -> None:
    body = {"k" * 10_000: json.loads(nested_objects(40))}
    assert too_deeply_nested(json.dumps(body).encode()) == "k" * 100


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100,  # brackets in a string are text
        '\\"' + "{" * 100,  # an escaped quote does not end the string
        "\\\\",  # an escaped backslash does not escape the closing quote
    ],
)
def test_brackets_inside_strings_do_not_count(text: str) -> None:
    body = json.dumps({"data": {"note": text, "more": text}, "other": [text]}).encode()
    assert json.loads(body)["data"]["note"] == text
    assert too_deeply_nested(body) is None


def test_an_escaped_backslash_before_a_quote_ends_the_string() -> None:
    body = b'{"data": "\\\\", "deep": ' + nested_objects(40).encode() + b"}"
    assert too_deeply_nested(body) == "deep"


def test_a_body_too_deep_outside_any_field_is_named_body() -> None:
    assert too_deeply_nested(b"[" * 100) == "body"


def test_the_largest_bodies_are_read_in_linear_time() -> None:
    worst_cases = [
        b'"' + b'\\"' * (MAX_BODY_BYTES // 2),
        b"[" * MAX_BODY_BYTES,
        b'{"a":' + b'"[",' * (MAX_BODY_BYTES // 4),
    ]
    started = time.monotonic()
    for body in worst_cases:
        too_deeply_nested(body)
    # A few tens of milliseconds each; a quadratic scan would take minutes.
    assert time.monotonic() - started < 5
