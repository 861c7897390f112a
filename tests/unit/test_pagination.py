import pytest

from hookrelay.pagination import decode_cursor, encode_cursor
from hookrelay.problems import ProblemError


def test_round_trip() -> None:
    cursor = encode_cursor({"id": "abc"})
    assert "=" not in cursor
    assert decode_cursor(cursor, frozenset({"id"})) == {"id": "abc"}


@pytest.mark.parametrize("cursor", ["", "!!", "bm90LWpzb24", encode_cursor({"other": "x"}), encode_cursor({"id": ""})])
def test_foreign_cursors_are_422(cursor: str) -> None:
    with pytest.raises(ProblemError) as raised:
        decode_cursor(cursor, frozenset({"id"}))
    assert raised.value.problem.status == 422
    assert raised.value.problem.invalid_params and raised.value.problem.invalid_params[0].name == "query.after"
