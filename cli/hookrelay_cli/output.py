"""What commands print: results on stdout (one JSON document or an aligned table), the rest on stderr."""

import json
import sys
from collections.abc import Sequence
from typing import Any


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def print_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], as_json: bool, name: str) -> None:
    """One JSON document, {name: rows} (whole, even without rows), or a table of `columns` (a missing value
    shows as -)."""
    if as_json:
        print_json({name: list(rows)})
        return
    cells = [[column.upper() for column in columns]] + [
        ["-" if row.get(column) is None else str(row[column]) for column in columns] for row in rows
    ]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    for line in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
