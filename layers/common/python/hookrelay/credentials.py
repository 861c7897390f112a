"""What names a credential, and how hookrelay shows one it keeps: one rule for custom headers and for the
query parameters of an endpoint's URL, so that a secret is write-only whichever way a tenant sends it."""

from typing import Final

# Words that make a name a credential's (case-insensitive), as Svix masks header values by them.
CREDENTIAL_WORDS: Final = ("token", "secret", "key", "signature", "password")
# Query parameter names that are credentials whole (case-insensitive), though as words inside a name
# they would mark ordinary headers (`X-Signer-Code`): Azure Functions' function key (`code`), Azure SAS's
# signature (`sig`), and other receivers' shared secrets.
CREDENTIAL_QUERY_NAMES: Final = frozenset({"code", "sig", "auth", "pwd", "passwd", "jwt"})
MASK: Final = "***"


def names_a_credential(name: str) -> bool:
    """Whether a header's or query parameter's name says its value is a credential (`X-Api-Key`, `access_token`)."""
    lowered = name.lower()
    return any(word in lowered for word in CREDENTIAL_WORDS)


def names_a_query_credential(name: str) -> bool:
    """Whether an endpoint's query parameter carries a credential (`access_token`, Azure's `code`)."""
    return name.lower() in CREDENTIAL_QUERY_NAMES or names_a_credential(name)
