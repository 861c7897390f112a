"""The transport against real HTTPS receivers on 127.0.0.1 with a test CA (trustme)."""

import base64
import gzip
import itertools
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import trustme
from receivers import Answer, RawReceiver, Receiver, raw_receiver, receiver, trickling_receiver

import hookrelay.deadlines as deadlines_module
import hookrelay.lookups as lookups_module
from hookrelay.lookups import MAX_LOOKUPS_IN_FLIGHT
from hookrelay.senders import AttemptResult
from hookrelay.transport import Transport

HOST = "hooks.test"
# local_transport's deadline for a whole attempt; the trickling tests need it short.
DEADLINE_SECONDS = 2.0
# How late past the deadline an attempt may come back (the issue: within the deadline + 1 s).
LATE_SECONDS = 1.0
TRICKLED_BODY = Answer(body=b"a" * 1_000_000, trickle_seconds=0.25)


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
    return Transport(allow_private=True, resolver=to_loopback, verify=ca_file, total_timeout=DEADLINE_SECONDS)


@pytest.fixture
def hanging_lookups() -> Iterator[threading.Event]:
    """Set to let the hung lookups of hanging_resolver return (at the end of the test)."""
    released = threading.Event()
    yield released
    released.set()


def hanging_resolver(released: threading.Event) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        released.wait()
        return ["127.0.0.1"]

    return resolve


def trickling(part: str) -> AbstractContextManager[Receiver | RawReceiver]:
    return receiver(lambda _: TRICKLED_BODY) if part == "body" else trickling_receiver(part)


def assert_timed_out_at_the_deadline(result: AttemptResult, started: float) -> None:
    elapsed = time.monotonic() - started
    assert result.timed_out and result.status_code is None, result
    assert result.error and result.error.startswith("timeout: "), result
    assert DEADLINE_SECONDS - 0.1 <= elapsed < DEADLINE_SECONDS + LATE_SECONDS, elapsed


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


@pytest.mark.parametrize(
    ("written", "ascii_form"), [("bücher.test", "xn--bcher-kva.test"), ("例え.test", "xn--r8jz45g.test")]
)
def test_an_internationalised_host_goes_on_the_wire_in_its_ascii_form(
    ca: trustme.CA, ca_file: str, written: str, ascii_form: str
) -> None:
    # Before: the name as written went into Host (a latin-1 byte, or a UnicodeEncodeError that sent the
    # delivery round its queue to the DLQ, no attempt logged) and into the certificate check (a tls: failure).
    looked_up: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    transport = Transport(allow_private=True, resolver=resolver, verify=ca_file)
    with receiver(tls_for=ascii_form, ca=ca) as server:
        result = transport.post(f"https://{written}:{server.port}/hook", b"{}", {})
    assert result.delivered, result
    (request,) = server.received
    assert request.server_name == ascii_form
    assert request.headers["Host"] == f"{ascii_form}:{server.port}"
    assert looked_up == [ascii_form]


@pytest.mark.parametrize("host", ["☃.test", "ab--c.bücher.test", "a..bücher.test"])
def test_a_stored_host_idna_cannot_write_in_ascii_is_a_failed_attempt_not_an_exception(host: str) -> None:
    # The API refuses such a name; one stored before is refused at send, never raised (before: a
    # UnicodeEncodeError, or a request with a raw byte in Host).
    with receiver() as server:
        result = Transport(allow_private=True, resolver=to_loopback).post(f"http://{host}:{server.port}/", b"{}", {})
    assert result.status_code is None and result.error, result
    assert result.error.startswith("refused: endpoint has a host name that is not a valid internationalised domain")
    assert server.connections == 0


@pytest.mark.parametrize(("address", "host"), [("2001:db8::1", "[2001:db8::1]"), ("127.0.0.1", "127.0.0.1")])
def test_an_address_literal_goes_in_host_as_a_url_writes_it_and_is_not_sent_as_sni(
    ca: trustme.CA, local_transport: Transport, address: str, host: str
) -> None:
    # Before: Host: 2001:db8::1:8443, where the address and the port cannot be told apart (RFC 9110 §7.2).
    with receiver(tls_for=address, ca=ca) as server:
        assert local_transport.post(f"https://{host}:{server.port}/hook", b"{}", {}).delivered
    (request,) = server.received
    assert request.headers["Host"] == f"{host}:{server.port}"
    assert request.server_name is None


def test_a_certificate_for_another_name_is_a_tls_failure(ca: trustme.CA, local_transport: Transport) -> None:
    with receiver(tls_for="other.test", ca=ca) as server:
        result = local_transport.post(f"https://{HOST}:{server.port}/", b"{}", {})
    assert result.status_code is None and result.error and result.error.startswith("tls:")
    assert server.received == []


def test_by_default_a_certificate_from_a_ca_outside_the_bundle_is_a_tls_failure(ca: trustme.CA) -> None:
    # The transport's own trust (certifi's bundle, as deployed): the test CA is not in it.
    transport = Transport(allow_private=True, resolver=to_loopback, total_timeout=DEADLINE_SECONDS)
    with receiver(tls_for=HOST, ca=ca) as server:
        result = transport.post(f"https://{HOST}:{server.port}/", b"{}", {})
    assert result.status_code is None and result.error and result.error.startswith("tls:"), result
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


@pytest.mark.parametrize(
    ("answer", "excerpt"),
    [
        # Bytes that are not UTF-8 show as U+FFFD, 3 bytes each: as many as fit, not 1 024 of them (3 KiB).
        (b"\xff" * 2048, "\ufffd" * 341),
        # A character the 1 024th byte would split is left out, not replaced (1 026 bytes).
        (b"a" * 1023 + "é".encode() * 10, "a" * 1023),
    ],
    ids=["binary", "split-character"],
)
def test_the_excerpt_is_at_most_1_kib_of_utf8(
    ca: trustme.CA, local_transport: Transport, answer: bytes, excerpt: str
) -> None:
    with receiver(lambda _: Answer(500, answer), tls_for=HOST, ca=ca) as server:
        result = local_transport.post(f"https://{HOST}:{server.port}/", b"{}", {})
    assert result.response_excerpt == excerpt
    assert len(result.response_excerpt.encode("utf-8")) <= 1024


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


# Socket timeouts bound each read, not the attempt: a receiver that sends a byte now and then, or a name
# lookup that hangs, must still end the attempt at its deadline (pytest's timeout ends the old hang).


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("part", "scheme"),
    [("tls handshake", "https"), ("status line", "http"), ("headers", "http"), ("body", "http")],
)
def test_an_answer_trickled_a_byte_at_a_time_times_out_at_the_deadline(
    part: str, scheme: str, local_transport: Transport
) -> None:
    with trickling(part) as server:
        started = time.monotonic()
        result = local_transport.post(f"{scheme}://{HOST}:{server.port}/", b"{}", {})
    assert_timed_out_at_the_deadline(result, started)


@pytest.mark.timeout(20)
def test_a_trickled_answer_on_a_kept_alive_connection_times_out_at_the_deadline(local_transport: Transport) -> None:
    answers = iter([Answer(), TRICKLED_BODY, Answer()])
    with receiver(lambda _: next(answers)) as server:
        url = f"http://{HOST}:{server.port}/"
        assert local_transport.post(url, b"{}", {}).delivered
        started = time.monotonic()
        assert_timed_out_at_the_deadline(local_transport.post(url, b"{}", {}), started)
        assert local_transport.post(url, b"{}", {}).delivered
    first, trickled, after = (request.client_port for request in server.received)
    assert trickled == first, "the second request did not reuse the kept-alive connection"
    assert after != trickled, "the connection shut at the deadline went back to the pool"


@pytest.mark.timeout(20)
def test_a_name_lookup_that_hangs_times_out_at_the_deadline(hanging_lookups: threading.Event) -> None:
    transport = Transport(
        allow_private=False, resolver=hanging_resolver(hanging_lookups), total_timeout=DEADLINE_SECONDS
    )
    started = time.monotonic()
    result = transport.post(f"https://{HOST}/", b"{}", {})
    assert_timed_out_at_the_deadline(result, started)
    assert result.error == "timeout: name lookup"


@pytest.mark.timeout(20)
def test_hung_name_lookups_hold_a_bounded_number_of_threads(hanging_lookups: threading.Event) -> None:
    transport = Transport(allow_private=True, resolver=hanging_resolver(hanging_lookups), total_timeout=0.5)
    threads_before = threading.active_count()
    attempts = MAX_LOOKUPS_IN_FLIGHT + 8
    for _ in range(2):
        # Not `with`: a sender stuck in a lookup would hang the test in the executor's exit.
        senders = ThreadPoolExecutor(max_workers=attempts)
        sends = senders.map(lambda _: transport.post(f"https://{HOST}/", b"{}", {}), range(attempts), timeout=5)
        assert all(result.timed_out for result in sends)
        senders.shutdown()
        assert threading.active_count() - threads_before <= MAX_LOOKUPS_IN_FLIGHT


@pytest.mark.timeout(30)
def test_many_attempts_in_flight_each_end_at_their_own_deadline_without_a_thread_each() -> None:
    """One watchdog ends them all: a shorter deadline added later still comes first, and no timer thread per attempt."""
    long_deadline, short_deadline, each = 4.0, 1.0, 12
    slow = Transport(allow_private=True, total_timeout=long_deadline)
    quick = Transport(allow_private=True, total_timeout=short_deadline)

    def timed(transport: Transport, url: str) -> tuple[AttemptResult, float]:
        started = time.monotonic()
        result = transport.post(url, b"{}", {})
        return result, time.monotonic() - started

    threads_before = threading.active_count()
    with trickling_receiver("status line") as server:
        url = f"http://127.0.0.1:{server.port}/"
        senders = ThreadPoolExecutor(max_workers=2 * each)
        slow_sends = [senders.submit(timed, slow, url) for _ in range(each)]
        time.sleep(0.2)  # the long deadlines are waited for first
        quick_sends = [senders.submit(timed, quick, url) for _ in range(each)]
        time.sleep(short_deadline / 2)
        # A sender and a receiver's handler per attempt, the receiver's server, and nothing per attempt besides.
        threads_in_flight = threading.active_count() - threads_before
        quick_results = [send.result(timeout=10) for send in quick_sends]
        slow_results = [send.result(timeout=10) for send in slow_sends]
        senders.shutdown()
    assert threads_in_flight <= 2 * 2 * each + 2, f"{threads_in_flight} threads for {2 * each} attempts"
    for results, deadline in ((quick_results, short_deadline), (slow_results, long_deadline)):
        for result, elapsed in results:
            assert result.timed_out and result.error and result.error.startswith("timeout: "), result
            assert deadline - 0.1 <= elapsed < deadline + LATE_SECONDS, (deadline, elapsed)


def test_an_ended_attempt_leaves_no_deadline_behind(local_transport: Transport) -> None:
    with receiver() as server:
        url = f"http://{HOST}:{server.port}/"
        assert local_transport.post(url, b"{}", {}).delivered
        assert local_transport.post("https://", b"{}", {}).error
        time.sleep(DEADLINE_SECONDS + 0.5)  # past the first attempt's deadline
        # Its kept-alive connection was not shut down at its deadline.
        assert local_transport.post(url, b"{}", {}).delivered
    with trickling_receiver("status line") as trickler:
        assert local_transport.post(f"http://{HOST}:{trickler.port}/", b"{}", {}).timed_out
    assert len({request.client_port for request in server.received}) == 1
    # Read from the transport's one watchdog: no deadline of an ended attempt stays queued (nor holds a timer).
    assert deadlines_module.WATCHDOG.pending == 0


def test_an_address_literal_is_resolved_in_the_attempts_own_thread() -> None:
    looked_up_in: list[threading.Thread] = []

    def resolve_locally(host: str, port: int) -> list[str]:
        looked_up_in.append(threading.current_thread())
        return [host]

    transport = Transport(allow_private=True, resolver=resolve_locally)
    with receiver() as server:
        assert transport.post(f"http://127.0.0.1:{server.port}/", b"{}", {}).delivered
    assert looked_up_in == [threading.current_thread()]


def test_a_name_is_looked_up_once_for_the_attempts_of_a_few_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lookups_module, "LOOKUP_REUSED_FOR_SECONDS", 1.0)
    answers = iter([["127.0.0.1"], ["127.0.0.2"]])
    lookups: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return next(answers)

    transport = Transport(allow_private=True, resolver=rebinding)
    with receiver() as server:
        url = f"http://{HOST}:{server.port}/"
        assert transport.post(url, b"{}", {}).delivered
        assert transport.post(url, b"{}", {}).delivered
        assert lookups == [HOST]
        time.sleep(1.2)
        # Looked up again, and sent to the new answer, where nothing listens (the receiver is on 127.0.0.1).
        result = transport.post(url, b"{}", {})
    assert lookups == [HOST, HOST]
    assert result.error and result.error.startswith("connection:"), result


# Receiver answers (issue 13, item 9): asked for uncompressed, read up to the cap and no further.


def test_the_answer_is_asked_for_uncompressed(local_transport: Transport) -> None:
    with receiver() as server:
        assert local_transport.post(f"http://{HOST}:{server.port}/", b"{}", {}).delivered
    (request,) = server.received
    assert request.headers["Accept-Encoding"] == "identity"


def test_any_answer_is_accepted_unless_the_headers_say_otherwise(local_transport: Transport) -> None:
    with receiver() as server:
        url = f"http://{HOST}:{server.port}/"
        assert local_transport.post(url, b"{}", {}).delivered
        assert local_transport.post(url, b"{}", {"Accept": "application/json"}).delivered
    assert [request.headers["Accept"] for request in server.received] == ["*/*", "application/json"]


def test_a_header_of_the_subscription_replaces_the_default_whatever_its_case(local_transport: Transport) -> None:
    # Before: "accept: application/json" was sent beside the default "Accept: */*".
    with receiver() as server:
        assert local_transport.post(f"http://{HOST}:{server.port}/", b"{}", {"accept": "application/json"}).delivered
    (request,) = server.received
    assert [(name, value) for name, value in request.headers.items() if name.lower() == "accept"] == [
        ("accept", "application/json")
    ]


def test_credentials_in_the_endpoint_are_sent_as_basic_authentication_whatever_their_characters(
    local_transport: Transport,
) -> None:
    # Latin-1 as requests sent them (what most receivers decode); beyond latin-1, RFC 7617's UTF-8,
    # never an exception that would send the delivery round the queue to its DLQ.
    with receiver() as server:
        for user in ("hook-user", "h%C3%A4ndler", "%E2%98%83"):
            assert local_transport.post(f"http://{user}:p%40ss@{HOST}:{server.port}/", b"{}", {}).delivered
    sent = [base64.b64decode(request.headers["Authorization"].removeprefix("Basic ")) for request in server.received]
    assert sent == [b"hook-user:p@ss", "händler:p@ss".encode("latin-1"), "☃:p@ss".encode()]


def test_an_endless_answer_is_read_up_to_the_cap_only(local_transport: Transport) -> None:
    endless = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n"
    with raw_receiver(endless, lambda: itertools.repeat(ord("a"))) as server:
        started = time.monotonic()
        result = local_transport.post(f"http://{HOST}:{server.port}/", b"{}", {})
        elapsed = time.monotonic() - started
        time.sleep(0.5)  # what the receiver can still write once the answer is no longer read
    assert result.delivered and result.response_excerpt == "a" * 1024
    assert elapsed < DEADLINE_SECONDS / 2, "the answer was read on, past its cap"
    # The cap is 64 KiB; the rest of what the receiver wrote is what the kernel's socket buffers took.
    assert server.sent < 32 * 1024 * 1024


def test_a_compressed_answer_sent_anyway_is_decompressed_up_to_the_cap_only(local_transport: Transport) -> None:
    # 64 MiB of zeros in 64 KiB of gzip: decompressed whole, or a compressed chunk at a time, it would
    # take megabytes; read up to the cap, it takes about the cap.
    bomb = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)
    head = f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n".encode()
    with raw_receiver(head + bomb) as server:
        tracemalloc.start()
        try:
            result = local_transport.post(f"http://{HOST}:{server.port}/", b"{}", {})
            _, peak_bytes = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result.delivered and result.response_excerpt == "\0" * 1024
    assert peak_bytes < 1024 * 1024, f"{peak_bytes} bytes taken to read a {len(bomb)}-byte answer"
