"""Webhook secrets, the signing key derived from them, and the signatures of a request (SPEC §4).

Subscriptions with `signature_scheme: ed25519` also hold a Standard Webhooks key pair: `whsk_` + base64
of the 32-byte ed25519 private key (RFC 8032 seed), kept server side, and `whpk_` + base64 of the
32-byte public key, which receivers verify `v1a,` signatures with.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
PRIVATE_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"


def generate_secret() -> str:
    """A new secret in the Standard Webhooks form: whsec_ + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _ed25519() -> type["Ed25519PrivateKey"]:
    # Imported at first use: ingest signs nothing and delivery signs with ed25519 only for the
    # subscriptions that chose it, so cryptography's import would cost every cold start of both.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: PLC0415 - see above

    return Ed25519PrivateKey


def generate_key_pair() -> tuple[str, str]:
    """A new ed25519 key pair in the Standard Webhooks form: (whsk_ private key, whpk_ public key)."""
    private_key = _ed25519().generate()
    public_bytes = private_key.public_key().public_bytes_raw()
    return (
        PRIVATE_KEY_PREFIX + base64.b64encode(private_key.private_bytes_raw()).decode("ascii"),
        PUBLIC_KEY_PREFIX + base64.b64encode(public_bytes).decode("ascii"),
    )


# Standard Webhooks secrets are 24 to 64 random bytes; a plain secret must be at least as long to guess.
STANDARD_KEY_BYTES = range(24, 65)
MIN_PLAIN_SECRET_CHARACTERS = 24


def check_secret(secret: str) -> None:
    """Raise ValueError, saying why, for a secret hookrelay will not sign with."""
    if secret.startswith(SECRET_PREFIX):
        size = len(signing_key(secret))
        if size not in STANDARD_KEY_BYTES:
            raise ValueError(f"the part after {SECRET_PREFIX} must decode to 24 to 64 bytes, not {size}")
    elif len(secret) < MIN_PLAIN_SECRET_CHARACTERS:
        raise ValueError(f"must be at least {MIN_PLAIN_SECRET_CHARACTERS} characters (or {SECRET_PREFIX} + base64)")


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


def standard_webhooks_signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, one entry of `webhook-signature`."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def asymmetric_signature(private_key: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1a,<base64 ed25519 signature of "{id}.{timestamp}.{body}">`, one entry of `webhook-signature`."""
    seed = base64.b64decode(private_key.removeprefix(PRIVATE_KEY_PREFIX), validate=True)
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1a," + base64.b64encode(_ed25519().from_private_bytes(seed).sign(signed)).decode("ascii")


def yousign_signature(key: bytes, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256(key, body)>`, the value of X-Yousign-Signature-256."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def subnoto_signature(key: bytes, timestamp_ms: int, body: bytes) -> str:
    """`t=<ms>,v1=<hex HMAC-SHA256(key, "t:{ms}:{body}")>`, the value of X-Webhook-Signature."""
    digest = hmac.new(key, f"t:{timestamp_ms}:".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp_ms},v1={digest}"


def signature_headers(
    *,
    secret_keys: Sequence[str],
    private_keys: Sequence[str] = (),
    delivery_id: str,
    subscription_id: str,
    attempts_before: int,
    body: bytes,
    sent_at: datetime,
) -> dict[str, str]:
    """Every signature header of one request (SPEC §4), over the exact body bytes sent.

    `secret_keys` lists the current secret first, then any previous one still in its rotation overlap:
    each adds a `v1,` entry to `webhook-signature`; the Yousign and Subnoto styles, which carry one
    signature, use the current secret. `private_keys` (ed25519 subscriptions), in the same order, each
    add a `v1a,` entry.
    """
    keys = [signing_key(secret) for secret in secret_keys]
    seconds = int(sent_at.timestamp())
    milliseconds = int(sent_at.timestamp() * 1000)
    entries = [asymmetric_signature(private_key, delivery_id, seconds, body) for private_key in private_keys]
    entries += [standard_webhooks_signature(key, delivery_id, seconds, body) for key in keys]
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(seconds),
        "webhook-signature": " ".join(entries),
        "X-Yousign-Signature-256": yousign_signature(keys[0], body),
        "X-Yousign-Retry": str(attempts_before),
        "X-Yousign-Issued-At": str(seconds),
        "X-Webhook-Id": subscription_id,
        "X-Webhook-Signature": subnoto_signature(keys[0], milliseconds, body),
    }
