"""The transport against real HTTPS receivers on 127.0.0.1 with a test CA (trustme)."""

from pathlib import Path

import pytest
import trustme
from receivers import Answer, receiver

from hookrelay.transport import Transport

HOST = "hooks.test"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


@pytest.fixture
def local_transport(ca_file: str) -> Transport:
    # Receivers live on 127.0.0.1, so the address check is lifted, as in the local stack.
    return Transport(allow_private=True, resolver=to_loopback, verify=ca_file, total_timeout=2.0)


def test_https_with_sni_and_certificate_of_the_hostname(ca: trustme.CA, local_transport: Transport) -> None:
    with receiver(lambda _: Answer(202, b"accepted"), tls_for=HOST, ca=ca) as server:
        result = local_transport.post(
            f"https://{HOST}:{server.port}/hook?x=1", b'{"a":1}', {"Content-Type": "application/json"}
        )
    assert result.delivered and result.status_code == 202 and result.response_excerpt == "accepted"
    (request,) = server.received
    assert request.server_name == HOST
    assert request.headers["Host"] == f"{HOST}:{server.port}"
    assert request.path == "/hook?x=1" and request.body == b'{"a":1}'
    assert "X-Hookrelay-Pinned-Host" not in request.headers


def test_a_certificate_for_another_name_is_a_tls_failure(ca: trustme.CA, local_transport: Transport) -> None:
    with receiver(tls_for="other.test", ca=ca) as server:
        result = local_transport.post(f"https://{HOST}:{server.port}/", b"{}", {})
    assert result.status_code is None and result.error and result.error.startswith("tls:")
    assert server.received == []


def test_redirects_are_not_followed(ca: trustme.CA, local_transport: Transport) -> None:
    redirect = Answer(302, b"", {"Location": "https://127.0.0.1:1/metadata"})
    with receiver(lambda _: redirect, tls_for=HOST, ca=ca) as server:
        result = local_transport.post(f"https://{HOST}:{server.port}/", b"{}", {})
    assert result.status_code == 302 and not result.delivered
    assert result.error == "redirect: 302 not followed"
    assert len(server.received) == 1


def test_a_slow_answer_times_out(ca: trustme.CA, local_transport: Transport) -> None:
    with receiver(lambda _: Answer(delay_seconds=3), tls_for=HOST, ca=ca) as server:
        result = local_transport.post(f"https://{HOST}:{server.port}/", b"{}", {})
    assert result.timed_out and result.status_code is None and result.error and result.error.startswith("timeout")


def test_retry_after_and_a_capped_excerpt(ca: trustme.CA, local_transport: Transport) -> None:
    with receiver(lambda _: Answer(429, b"x" * 5000, {"Retry-After": "120"}), tls_for=HOST, ca=ca) as server:
        result = local_transport.post(f"https://{HOST}:{server.port}/", b"{}", {})
    assert result.status_code == 429 and result.retry_after == "120"
    assert len(result.response_excerpt) == 1024


def test_connection_refused_is_a_connection_failure(local_transport: Transport) -> None:
    with receiver() as server:
        port = server.port
    # The receiver has closed: nothing listens on its port now (port 1 would be refused before connecting).
    result = local_transport.post(f"https://{HOST}:{port}/", b"{}", {})
    assert result.status_code is None and result.error and result.error.startswith("connection:")


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://127.0.0.1:{port}/",
        "https://localhost:{port}/",
        "https://[::ffff:127.0.0.1]:{port}/",
        "http://hooks.test:{port}/",
    ],
)
def test_private_addresses_are_refused_at_send_without_connecting(endpoint: str) -> None:
    with receiver() as server:
        result = Transport(allow_private=False).post(endpoint.format(port=server.port), b"{}", {})
    assert result.status_code is None and result.error and result.error.startswith("refused:")
    assert server.connections == 0


@pytest.mark.parametrize(
    ("endpoint", "allow_private"),
    [("https://hooks.test:22/", False), ("https://hooks.test:80/", True), ("http://hooks.test:25/", True)],
)
def test_a_port_other_than_443_or_above_1023_is_refused_at_send_without_a_lookup(
    endpoint: str, allow_private: bool
) -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise AssertionError(f"looked up {host}:{port}")

    result = Transport(allow_private=allow_private, resolver=resolver).post(endpoint, b"{}", {})
    assert result.status_code is None and result.error and result.error.startswith("refused: endpoint must use port")


def test_a_name_that_now_resolves_private_is_refused_at_send() -> None:
    # Public when the subscription was vetted, rebound to loopback by the time of the send.
    with receiver() as server:
        transport = Transport(allow_private=False, resolver=to_loopback)
        result = transport.post(f"https://{HOST}:{server.port}/", b"{}", {})
    assert result.error and "resolves to 127.0.0.1" in result.error
    assert server.connections == 0


def test_an_unresolvable_name_is_a_failed_attempt() -> None:
    result = Transport(allow_private=False).post("https://nowhere.invalid/", b"{}", {})
    assert result.status_code is None and result.error and result.error.startswith("dns:")


def test_keep_alive_reuses_the_connection(ca: trustme.CA, local_transport: Transport) -> None:
    with receiver(tls_for=HOST, ca=ca) as server:
        for _ in range(3):
            assert local_transport.post(f"https://{HOST}:{server.port}/", b"{}", {}).delivered
    assert len({request.client_port for request in server.received}) == 1
