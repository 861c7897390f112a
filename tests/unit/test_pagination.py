import pytest

from hookrelay.errors import DomainError
from hookrelay.http_api import problem_of
from hookrelay.pagination import decode_cursor, encode_cursor


def test_round_trip() -> None:
    cursor = encode_cursor({"id": "abc"})
    assert "=" not in cursor
    assert decode_cursor(cursor, frozenset({"id"})) == {"id": "abc"}


@pytest.mark.parametrize("cursor", ["", "!!", "bm90LWpzb24", encode_cursor({"other": "x"}), encode_cursor({"id": ""})])
def test_foreign_cursors_are_422(cursor: str) -> None:
    with pytest.raises(DomainError) as raised:
        decode_cursor(cursor, frozenset({"id"}))
    problem = problem_of(raised.value).problem
    assert problem.status == 422
    assert problem.invalid_params and problem.invalid_params[0].name == "query.after"
