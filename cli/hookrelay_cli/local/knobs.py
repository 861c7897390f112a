"""The local stack's HOOKRELAY_LOCAL_* settings read from text, a value that is not one refused with
a ValueError that names its variable."""


def share(variable: str, text: str) -> float:
    """A share from 0 to 1 (a rate)."""
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not 0 <= rate <= 1:
        raise ValueError(f"{variable} must be a number from 0 to 1, not {text!r}")
    return rate


def milliseconds(variable: str, text: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"{variable} must be a whole number of milliseconds, not {text!r}")
    return int(text)


def niceness(variable: str, text: str) -> int:
    """A process's niceness added to its parent's: a whole number from 0 to 19."""
    if not text.strip().isdigit() or int(text) > 19:
        raise ValueError(f"{variable} must be a whole number from 0 to 19, not {text!r}")
    return int(text)
