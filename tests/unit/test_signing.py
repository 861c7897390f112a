import base64

import pytest

from hookrelay.signing import generate_secret, signing_key


def test_generated_secret_is_standard_webhooks_form() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    assert generate_secret() != secret


def test_key_derivation() -> None:
    assert signing_key("whsec_" + base64.b64encode(b"k" * 24).decode()) == b"k" * 24
    assert signing_key("my custom secret") == b"my custom secret"
    with pytest.raises(ValueError, match="base64"):
        signing_key("whsec_***")
