"""SSRF probes (issue 8, R2): every form of a private target is refused when a subscription is created
or updated (422 on `endpoint`) and again at send, with no connection made.

One probe table drives every test. Names are resolved by a table of test names, not by DNS:
- at create/update, through the API (gateway, API function, moto), by patching `socket.getaddrinfo`,
  which the API's resolver (`hookrelay.addresses.resolve`) calls, so the whole stack is exercised;
- at send, by the resolver the delivery transport is given.
"""

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import urllib3.util.connection
from receivers import Answer, Receiver, receiver

from api_client import ApiClient, ApiResponse
from api_contract import PUBLIC_ENDPOINT, assert_problem, webhook
from hookrelay.addresses import resolve
from hookrelay.errors import DomainError
from hookrelay.subscriptions import ENDPOINT_LOOKUP_SECONDS, vet_endpoint
from hookrelay.transport import Transport

PUBLIC_ADDRESS = "93.184.215.14"

# What test names resolve to when a subscription is created or updated, and when a delivery is sent.
AT_CREATE = {
    "internal.test": ["10.0.0.5"],
    "metadata.test": ["169.254.169.254"],
    "mixed.test": [PUBLIC_ADDRESS, "10.0.0.5"],
    "rebind.test": [PUBLIC_ADDRESS],
    "public.test": [PUBLIC_ADDRESS],
}
AT_SEND = {**AT_CREATE, "rebind.test": ["127.0.0.1"]}


@dataclass(frozen=True)
class Probe:
    id: str
    # `{port}` is empty for the API and `:<port of a live receiver>` at send.
    url: str
    # False only where the target is public when the subscription is made (DNS rebinding).
    refused_at_create: bool = True

    def at(self, port: int | None = None) -> str:
        return self.url.format(port=f":{port}" if port else "")


PROBES = [
    Probe("loopback", "https://127.0.0.1{port}/hook"),
    Probe("localhost", "https://localhost{port}/hook"),
    Probe("localhost-absolute", "https://localhost.{port}/hook"),
    Probe("unspecified", "https://0.0.0.0{port}/hook"),
    Probe("ipv6-loopback", "https://[::1]{port}/hook"),
    Probe("ipv6-unspecified", "https://[::]{port}/hook"),
    Probe("aws-metadata", "https://169.254.169.254{port}/latest/meta-data/"),
    Probe("aws-metadata-ipv6", "https://[fd00:ec2::254]{port}/latest/meta-data/"),
    Probe("private-10/8", "https://10.0.0.5{port}/hook"),
    Probe("private-172.16/12", "https://172.31.255.254{port}/hook"),
    Probe("private-192.168/16", "https://192.168.1.20{port}/hook"),
    Probe("cgnat-100.64/10", "https://100.64.0.1{port}/hook"),
    Probe("ula-fc00::/7", "https://[fd12:3456::1]{port}/hook"),
    Probe("link-local-fe80::/10", "https://[fe80::1]{port}/hook"),
    Probe("link-local-with-zone", "https://[fe80::1%25eth0]{port}/hook"),
    Probe("ipv4-mapped", "https://[::ffff:127.0.0.1]{port}/hook"),
    Probe("ipv4-mapped-hex-metadata", "https://[::ffff:a9fe:a9fe]{port}/hook"),
    Probe("nat64-metadata", "https://[64:ff9b::a9fe:a9fe]{port}/hook"),
    Probe("decimal", "https://2130706433{port}/hook"),
    Probe("hex", "https://0x7f000001{port}/hook"),
    Probe("octal", "https://0177.0.0.1{port}/hook"),
    Probe("short", "https://127.1{port}/hook"),
    Probe("fullwidth-digits", "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11{port}/hook"),
    Probe("userinfo", "https://public@127.0.0.1{port}/hook"),
    Probe("userinfo-with-host-and-port", "https://hooks.example.com:443@[::1]{port}/hook"),
    Probe("plain-http", "http://127.0.0.1{port}/hook"),
    Probe("name-resolving-private", "https://internal.test{port}/hook"),
    Probe("name-resolving-metadata", "https://metadata.test{port}/hook"),
    Probe("name-with-one-private-address", "https://mixed.test{port}/hook"),
    Probe("rebinding-public-then-loopback", "https://rebind.test{port}/hook", refused_at_create=False),
]
PROBE_IDS = [probe.id for probe in PROBES]


def addrinfo(addresses: list[str], port: int) -> list[tuple[Any, ...]]:
    infos: list[tuple[Any, ...]] = []
    for text in addresses:
        if isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address):
            infos.append((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (text, port, 0, 0)))
        else:
            infos.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (text, port)))
    return infos


@pytest.fixture
def create_time_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """The system resolver answers for the test names as DNS would at create time; others as usual."""
    system = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        if isinstance(host, str) and host in AT_CREATE:
            return addrinfo(AT_CREATE[host], int(port or 0))
        return system(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def at_create(host: str, port: int) -> list[str]:
    return AT_CREATE.get(host) or resolve(host, port)


def at_send(host: str, port: int) -> list[str]:
    return AT_SEND.get(host) or resolve(host, port)


@pytest.fixture
def outbound(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every connection the transport opens, as (address, port); each goes to 127.0.0.1 on that port.

    So a connection to any address, 10.0.0.5 or 169.254.169.254 included, would reach the live receiver
    on that port and count in its `connections`: 0 there means no connection was attempted at all.
    """
    attempted: list[tuple[str, int]] = []
    connect = urllib3.util.connection.create_connection

    def record(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        attempted.append(address)
        return connect(("127.0.0.1", address[1]), *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", record)
    return attempted


@pytest.fixture(scope="module")
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    """A target receiver and one each redirect test scripts; one pair for the module (a stop takes 0.5 s)."""
    with receiver() as target, receiver() as redirecting:
        yield target, redirecting


def reset(server: Receiver) -> Receiver:
    server.connections = 0
    server.received.clear()
    return server


@pytest.fixture
def live_receiver(receivers: tuple[Receiver, Receiver]) -> Receiver:
    return reset(receivers[0])


@pytest.fixture
def redirecting(receivers: tuple[Receiver, Receiver]) -> Receiver:
    return reset(receivers[1])


def send(probe: Probe, port: int) -> str | None:
    result = Transport(allow_private=False, resolver=at_send, connect_timeout=1.0, total_timeout=2.0).post(
        probe.at(port), b"{}", {"Content-Type": "application/json"}
    )
    assert result.status_code is None
    return result.error


def refused_at_create(probe: Probe) -> bool:
    try:
        vet_endpoint(probe.at(), allow_private=False, resolver=at_create)
    except DomainError:
        return True
    return False


@pytest.mark.usefixtures("create_time_names")
@pytest.mark.parametrize("probe", PROBES, ids=PROBE_IDS)
def test_create_refuses_the_probe(api: ApiClient, probe: Probe) -> None:
    response = api.post("/v3/webhooks", webhook(endpoint=probe.at()))
    if not probe.refused_at_create:
        assert response.status == 201, response.body  # public when made: refused at send (below)
        return
    assert_problem(response, 422, "endpoint")
    assert {param["name"] for param in response.json()["invalid_params"]} == {"endpoint"}
    assert api.get("/v3/webhooks").json()["data"] == []


@pytest.mark.usefixtures("create_time_names")
@pytest.mark.parametrize("probe", PROBES, ids=PROBE_IDS)
def test_update_refuses_the_probe_and_keeps_the_endpoint(api: ApiClient, probe: Probe) -> None:
    path = f"/v3/webhooks/{api.post('/v3/webhooks', webhook()).json()['id']}"
    response = api.patch(path, {"endpoint": probe.at(), "description": "changed"})
    if not probe.refused_at_create:
        assert response.status == 200, response.body
        return
    assert_problem(response, 422, "endpoint")
    stored = api.get(path).json()
    assert stored["endpoint"] == PUBLIC_ENDPOINT and stored["description"] is None


@pytest.mark.parametrize("probe", PROBES, ids=PROBE_IDS)
def test_send_refuses_the_probe_without_connecting(
    probe: Probe, live_receiver: Receiver, outbound: list[tuple[str, int]]
) -> None:
    error = send(probe, live_receiver.port)
    assert error and error.startswith("refused: endpoint"), error
    assert outbound == [] and live_receiver.connections == 0


def test_the_connection_check_would_see_a_connection(live_receiver: Receiver, outbound: list[tuple[str, int]]) -> None:
    # The control: a public name is let through, and its connection (to PUBLIC_ADDRESS) is counted.
    error = send(Probe("public", "https://public.test{port}/hook"), live_receiver.port)
    assert error and error.startswith("tls:"), error  # the receiver speaks plain HTTP
    assert outbound == [(PUBLIC_ADDRESS, live_receiver.port)] and live_receiver.connections == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize(
    "location", ["http://169.254.169.254{port}/latest/meta-data/", "http://127.0.0.1{port}/", "http://[::1]{port}/"]
)
def test_a_redirect_to_a_private_address_is_not_followed(
    status: int, location: str, live_receiver: Receiver, redirecting: Receiver, outbound: list[tuple[str, int]]
) -> None:
    # No public receiver exists offline, so the redirecting one is on 127.0.0.1 with the address
    # check lifted; its Location is the live receiver, reached by any connection to that port.
    redirection = Answer(status=status, body=b"", headers={"Location": location.format(port=f":{live_receiver.port}")})
    redirecting.script = lambda _: redirection
    transport = Transport(allow_private=True, resolver=lambda host, port: ["127.0.0.1"], total_timeout=2.0)
    result = transport.post(f"http://hooks.test:{redirecting.port}/", b"{}", {})
    assert result.status_code == status and not result.delivered
    assert result.error == f"redirect: {status} not followed"
    assert outbound == [("127.0.0.1", redirecting.port)] and redirecting.connections == 1
    assert live_receiver.connections == 0


def test_refusal_rate_is_100_percent(live_receiver: Receiver, outbound: list[tuple[str, int]]) -> None:
    """Every probe, at create (the API's vet_endpoint) and at send (the transport), in one table."""
    rows = []
    for probe in PROBES:
        at_create_refused = refused_at_create(probe)
        error = send(probe, live_receiver.port)
        rows.append((probe, at_create_refused, bool(error and error.startswith("refused")), error))
    create_stage = [refused for probe, refused, _, _ in rows if probe.refused_at_create]
    send_stage = [refused for _, _, refused, _ in rows]
    print(f"\n{'probe':34} {'create':8} {'send':6} send error")
    for probe, created, sent, error in rows:
        print(f"{probe.id:34} {('refused' if created else 'accepted'):8} {('refused' if sent else 'SENT'):6} {error}")
    print(
        f"refusal rate: create {sum(create_stage)}/{len(create_stage)}, send {sum(send_stage)}/{len(send_stage)},"
        f" connections {live_receiver.connections}"
    )
    assert len(PROBES) >= 20
    assert all(create_stage) and all(send_stage)
    assert [probe.id for probe, created, _, _ in rows if not created] == ["rebinding-public-then-loopback"]
    assert outbound == [] and live_receiver.connections == 0


def test_probe_ids_are_unique() -> None:
    assert len(set(PROBE_IDS)) == len(PROBES)


@pytest.mark.usefixtures("create_time_names")
@pytest.mark.parametrize("host", ["internal.test", "metadata.test", "mixed.test"])
def test_a_refusal_never_says_where_a_name_resolved(api: ApiClient, host: str) -> None:
    """Else creating and updating subscriptions is a lookup tool for the names of the network the API runs in."""
    endpoint = f"https://{host}/hooks"
    path = f"/v3/webhooks/{api.post('/v3/webhooks', webhook()).json()['id']}"
    for response in (api.post("/v3/webhooks", webhook(endpoint=endpoint)), api.patch(path, {"endpoint": endpoint})):
        problem = assert_problem(response, 422, "endpoint")
        assert problem["invalid_params"] == [
            {"name": "endpoint", "reason": f"host {host} does not resolve to a public address"}
        ]
        assert "10.0.0.5" not in response.body.decode() and "169.254" not in response.body.decode()


@pytest.fixture
def unanswering_name_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A name whose lookup never ends (until the test does), as with a name server that never answers."""
    system, unanswered = socket.getaddrinfo, threading.Event()

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        if host == "silent.test":
            unanswered.wait()
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return system(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield "silent.test"
    unanswered.set()


def test_a_name_server_that_never_answers_gets_a_prompt_422(api: ApiClient, unanswering_name_server: str) -> None:
    endpoint = f"https://{unanswering_name_server}/hooks"
    path = f"/v3/webhooks/{api.post('/v3/webhooks', webhook()).json()['id']}"
    sends: tuple[Callable[[], ApiResponse], ...] = (
        lambda: api.post("/v3/webhooks", webhook(endpoint=endpoint)),
        lambda: api.patch(path, {"endpoint": endpoint}),
    )
    for send in sends:
        started = time.monotonic()
        problem = assert_problem(send(), 422, "endpoint")
        # Before, the request waited for the lookup without end (on AWS: until the function's Timeout, a 5xx).
        assert time.monotonic() - started < ENDPOINT_LOOKUP_SECONDS + 2
        assert "did not resolve within" in str(problem["invalid_params"])
    assert api.get(path).json()["endpoint"] == PUBLIC_ENDPOINT
