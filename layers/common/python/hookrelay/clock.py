"""Time as hookrelay writes it: UTC, ISO-8601 with a Z, millisecond precision (sortable as text)."""

import re
from datetime import UTC, datetime, timedelta

# Epoch numbers this large are milliseconds: as seconds they would be past the year 5000.
_EPOCH_MILLISECONDS_FROM = 100_000_000_000
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_FIRST_YEAR, _LAST_YEAR = 1970, 9999
_OUT_OF_RANGE = f"is not a time between {_FIRST_YEAR} and {_LAST_YEAR}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(utc_now())


def parse_moment(value: str | float) -> datetime:
    """An ISO-8601 time (UTC when it has no offset) or a unix epoch in seconds or milliseconds, in UTC.

    Raises ValueError for anything else, including times outside years 1970-9999.
    """
    try:
        moment = _in_utc(value)
    except (OverflowError, OSError):
        # In UTC, as iso() writes it: 0001-01-01T00:30+01:00 is in year 0, which datetime cannot hold.
        raise ValueError(_OUT_OF_RANGE) from None
    if not _FIRST_YEAR <= moment.year <= _LAST_YEAR:
        raise ValueError(_OUT_OF_RANGE)
    return moment


def _in_utc(value: str | float) -> datetime:
    if isinstance(value, str):
        text = value.strip()
        return _in_utc(float(text)) if text.replace(".", "", 1).isdigit() else _from_iso(text)
    if value >= _EPOCH_MILLISECONDS_FROM:
        value = value / 1000
    try:
        return datetime.fromtimestamp(value, UTC)
    except ValueError:  # NaN
        raise ValueError(_OUT_OF_RANGE) from None


def _from_iso(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("is neither ISO-8601 nor a unix epoch") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def parse_duration(text: str) -> timedelta:
    """`90s`, `2m`, `24h`, `2d` as a timedelta; raises ValueError for anything else."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text.strip()!r} is not a number followed by s, m, h or d")
    return timedelta(seconds=float(match.group(1)) * _DURATION_UNITS[match.group(2)])
