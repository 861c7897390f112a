import base64
import hashlib
import hmac
import time


def verify(secret: str, headers: dict[str, str], body: bytes) -> None:
    """Raise ValueError unless X-Webhook-Signature is t=<ms>,v1=<hex HMAC-SHA256(key, "t:<ms>:<body>")>
    and fresh (headers lower-cased; body: the raw bytes, the `payload=...` string for a form)."""
    fields = dict(part.partition("=")[::2] for part in headers.get("x-webhook-signature", "").split(","))
    sent_ms = fields.get("t", "")
    if not sent_ms.isdigit() or abs(time.time() * 1000 - int(sent_ms)) > 300_000:
        raise ValueError("timestamp missing, too old or too new")
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    expected = hmac.new(key, f"t:{sent_ms}:".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields.get("v1", "")):
        raise ValueError("bad X-Webhook-Signature")
