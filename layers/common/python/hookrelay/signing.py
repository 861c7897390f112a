"""Webhook secrets and the signing key derived from them (SPEC §4)."""

import base64
import binascii
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def generate_secret() -> str:
    """A new secret in the Standard Webhooks form: whsec_ + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def signing_key(secret: str) -> bytes:
    """The HMAC key of a secret: the bytes after whsec_ base64-decoded, else the secret's UTF-8.

    Raises ValueError for a whsec_ secret whose rest is not valid base64.
    """
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except binascii.Error as error:
            raise ValueError(f"the part after {SECRET_PREFIX} is not valid base64 ({error})") from None
    return secret.encode("utf-8")
