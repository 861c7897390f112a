"""JSON whose strings UTF-8 can carry: a \\u escape of half a UTF-16 surrogate pair, alone, parses into a
string that no later step (EventBridge, SQS, DynamoDB, a receiver) can encode."""

import json
import re

# A \u escape of a surrogate: in a pair it is one character, alone it is none that UTF-8 holds.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def holds_unpaired_surrogate(text: str, parsed: object) -> bool:
    """Whether `parsed`, read from the JSON `text`, holds a string with an unpaired surrogate."""
    if not _SURROGATE_ESCAPE.search(text):
        return False
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
