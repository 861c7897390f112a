import base64
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # pip install cryptography


def verify(public_key: str, headers: dict[str, str], body: bytes) -> None:
    """Raise ValueError unless a `v1a,` entry of webhook-signature is the subscription's (headers lower-cased)."""
    if abs(time.time() - int(headers["webhook-timestamp"])) > 300:
        raise ValueError("timestamp too old or too new")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    for entry in headers["webhook-signature"].split():
        version, _, signature = entry.partition(",")
        if version == "v1a":
            try:
                return key.verify(base64.b64decode(signature), signed)
            except InvalidSignature:
                pass
    raise ValueError("no valid v1a signature")
