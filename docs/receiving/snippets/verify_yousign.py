import base64
import hashlib
import hmac


def verify(secret: str, headers: dict[str, str], body: bytes) -> None:
    """Raise ValueError unless X-Yousign-Signature-256 is sha256=<hex HMAC-SHA256(key, body)> (headers lower-cased)."""
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, headers.get("x-yousign-signature-256", "")):
        raise ValueError("bad X-Yousign-Signature-256")
