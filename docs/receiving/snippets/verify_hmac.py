import base64

from standardwebhooks.webhooks import Webhook  # pip install standardwebhooks


def verify(secret: str, headers: dict[str, str], body: bytes) -> None:
    """Raise standardwebhooks' WebhookVerificationError unless a `v1,` signature matches (and is fresh)."""
    # A whsec_ secret's key is its base64 part; a custom secret's key is its UTF-8 bytes.
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    Webhook(key).verify(body, headers)  # checks webhook-timestamp is within 5 minutes too
