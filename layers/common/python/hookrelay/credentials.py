"""What names a credential, and how hookrelay shows one it keeps: one rule for custom headers and for the
query parameters of an endpoint's URL, so that a secret is write-only whichever way a tenant sends it."""

from typing import Final

# Words that make a name a credential's (case-insensitive), as Svix masks header values by them.
CREDENTIAL_WORDS: Final = ("token", "secret", "key", "signature", "password")
MASK: Final = "***"


def names_a_credential(name: str) -> bool:
    """Whether a header's or query parameter's name says its value is a credential (`X-Api-Key`, `access_token`)."""
    lowered = name.lower()
    return any(word in lowered for word in CREDENTIAL_WORDS)
