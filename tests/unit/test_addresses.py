import ipaddress
import re
import socket

import pytest

from hookrelay.addresses import (
    Endpoint,
    EndpointRefused,
    holds_a_mask,
    masked,
    parse_endpoint,
    refusal_reason,
    resolve,
    same_origin,
    vet_addresses,
)


def endpoint(host: str) -> Endpoint:
    return Endpoint(url=f"https://{host}/", scheme="https", host=host, port=443)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "0.0.0.0",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.0.1",
        "100.64.0.1",
        "169.254.169.254",
        "198.18.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "64:ff9b::a00:1",
        "2002:7f00:1::",
        "2001:db8::1",
        # Counted as global by Python's ipaddress (3.13): site-local, RFC 9637 documentation, 6to4 relay anycast.
        "fec0::1",
        "feff:ffff::1",
        "3fff::1",
        "3fff:fff::1",
        "192.88.99.1",
        "::ffff:0:7f00:1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1", "2001:4860::8888", "3fff:1000::1"]
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("spelling", ["127.1", "0177.0.0.1", "2130706433", "0x7f000001", "localhost", "0"])
def test_every_resolver_spelling_of_loopback_is_refused(spelling: str) -> None:
    with pytest.raises(EndpointRefused, match=r"loopback|unspecified"):
        vet_addresses(endpoint(spelling))


def test_a_name_is_refused_when_any_of_its_addresses_is_private() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.5"]

    with pytest.raises(EndpointRefused, match=r"resolves to 10\.0\.0\.5, which is a private address"):
        vet_addresses(endpoint("rebind.example.com"), resolver)


def test_public_name_returns_its_addresses() -> None:
    assert vet_addresses(endpoint("hooks.example.com"), lambda host, port: ["1.1.1.1"]) == ["1.1.1.1"]


def test_unresolvable_name_raises_gaierror() -> None:
    with pytest.raises(socket.gaierror):
        resolve("does-not-exist.invalid", 443)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/hook", "https"),
        ("ftp://example.com/hook", "https"),
        ("https:///nohost", "host"),
        ("https://example.com:99999/", "valid URL"),
        ("https://exa mple.com/", "white space"),
        ("example.com/hook", "https"),
    ],
)
def test_endpoint_shape(url: str, reason: str) -> None:
    with pytest.raises(EndpointRefused, match=reason):
        parse_endpoint(url, allow_plain_http=False)


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("https://example.com/", 443),
        ("https://example.com:443/", 443),
        ("https://example.com:1024/", 1024),
        ("https://example.com:8443/", 8443),
        ("https://example.com:65535/", 65535),
        ("http://example.com/", 80),
        ("http://example.com:8080/", 8080),
    ],
)
def test_ports_443_and_above_1023_and_80_for_plain_http(url: str, port: int) -> None:
    assert parse_endpoint(url, allow_plain_http=True).port == port


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com:80/",
        "https://example.com:0/",
        "https://example.com:22/",
        "https://example.com:25/",
        "https://example.com:1023/",
        "http://example.com:22/",
        "http://example.com:389/x",
    ],
)
def test_other_ports_are_refused(url: str) -> None:
    with pytest.raises(EndpointRefused, match="port"):
        parse_endpoint(url, allow_plain_http=True)


def test_plain_http_only_when_allowed() -> None:
    assert parse_endpoint("http://127.0.0.1:8080/x", allow_plain_http=True).port == 8080
    assert parse_endpoint("https://user:pw@example.com/x", allow_plain_http=False).host == "example.com"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://例え.jp/hook", "xn--r8jz45g.jp"),
        ("https://BÜCHER.example:8443/", "xn--bcher-kva.example"),
        ("https://faß.de/", "xn--fa-hia.de"),
        ("https://bücher.example./", "xn--bcher-kva.example."),
        ("https://hooks.example.com/", "hooks.example.com"),
    ],
)
def test_an_internationalised_host_is_called_by_its_ascii_form(url: str, host: str) -> None:
    endpoint = parse_endpoint(url, allow_plain_http=False)
    assert endpoint.host == host and endpoint.url == url


@pytest.mark.parametrize("host", ["☃.example", "ab--c.bücher.example", "bücher..example", "ü" * 64 + ".example"])
def test_a_host_idna_cannot_write_in_ascii_is_refused(host: str) -> None:
    with pytest.raises(EndpointRefused, match="not a valid internationalised domain name"):
        parse_endpoint(f"https://{host}/", allow_plain_http=False)


def test_an_internationalised_host_is_vetted_by_the_name_that_is_looked_up() -> None:
    looked_up: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["10.0.0.7"]

    with pytest.raises(EndpointRefused, match=re.escape("xn--r8jz45g.jp resolves to 10.0.0.7")):
        vet_addresses(parse_endpoint("https://例え.jp/", allow_plain_http=False), resolver)
    assert looked_up == ["xn--r8jz45g.jp"]


@pytest.mark.parametrize("host", ["localhost.", "127.0.0.1.", "0x7f000001."])
def test_the_absolute_spelling_of_a_loopback_name_is_refused(host: str) -> None:
    # Before: resolved with its trailing dot, "localhost." did not resolve and so was accepted at create.
    with pytest.raises(EndpointRefused, match="loopback"):
        vet_addresses(endpoint(host))


@pytest.mark.parametrize("host", ["fe80::1%25lo", "fe80::1%no-such-interface", "fd00::1%x", "::1%x"])
def test_an_address_literal_is_refused_even_when_its_zone_does_not_resolve(host: str) -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # Before: the unknown zone id made the resolver fail, and an unresolvable host is accepted at create.
    with pytest.raises(EndpointRefused, match=f"host {re.escape(host)} is"):
        vet_addresses(parse_endpoint(f"https://[{host}]/", allow_plain_http=False), resolver)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pass@example.com/hook", "https://user:***@example.com/hook"),
        ("https://user:p%40ss:w@example.com:8443/h?q=1#f", "https://user:***@example.com:8443/h?q=1#f"),
        ("https://user:@example.com/", "https://user:***@example.com/"),
        ("https://ghp_token@example.com/", "https://***@example.com/"),
        ("https://u:p@[2001:db8::1]:8443/", "https://u:***@[2001:db8::1]:8443/"),
        ("https://example.com/a@b", "https://example.com/a@b"),
        ("https://example.com/?to=x@y", "https://example.com/?to=x@y"),
        # A chat webhook's posting credential is a path segment: Discord's after the webhook id, Slack's the last.
        (
            "https://discord.com/api/webhooks/1234567890/DISCORD-TOKEN-SECRET-abcdef",
            "https://discord.com/api/webhooks/1234567890/***",
        ),
        (
            "https://discordapp.com/api/webhooks/1234567890/DISCORD-TOKEN/slack?wait=true",
            "https://discordapp.com/api/webhooks/1234567890/***/slack?wait=true",
        ),
        (
            "https://discord.com/api/v10/webhooks/1234567890/DISCORD-TOKEN/github",
            "https://discord.com/api/v10/webhooks/1234567890/***/github",
        ),
        (
            "https://ptb.discord.com/api/v10/webhooks/1234567890/DISCORD-TOKEN-SECRET",
            "https://ptb.discord.com/api/v10/webhooks/1234567890/***",
        ),
        (
            "https://hooks.slack.com/services/T000/B000/SLACKSECRETxxxxxxxxxxxx",
            "https://hooks.slack.com/services/T000/B000/***",
        ),
        ("https://Hooks.Slack.com/triggers/T000/123/SLACKSECRET/", "https://Hooks.Slack.com/triggers/T000/123/***/"),
        # Sent to hooks.slack.com (full-width letters, a trailing dot): Slack's, its token masked.
        (
            "https://\uff48\uff4f\uff4f\uff4b\uff53.slack.com/services/T000/B000/SLACKSECRET",
            "https://\uff48\uff4f\uff4f\uff4b\uff53.slack.com/services/T000/B000/***",
        ),
        ("https://hooks.slack.com./services/T000/B000/SLACKSECRET", "https://hooks.slack.com./services/T000/B000/***"),
        # A query value is a credential by its parameter's name, as a custom header's value is by the header's.
        ("https://receiver.example.com/in?token=QUERY-SECRET-123456", "https://receiver.example.com/in?token=***"),
        (
            "https://receiver.example.com/in?event=done&Api_Key=k1&access%5Ftoken=t1&X-Signature=s1&password=",
            "https://receiver.example.com/in?event=done&Api_Key=***&access%5Ftoken=***&X-Signature=***&password=***",
        ),
        # Query names that are credentials whole, though too short to be words of a header's name:
        # Azure Functions' function key, Azure SAS's signature, and the like.
        (
            "https://fn.azurewebsites.net/api/hook?code=AZURE-FUNCTION-KEY&Sig=SAS&auth=a&pwd=p&jwt=j&clientId=c",
            "https://fn.azurewebsites.net/api/hook?code=***&Sig=***&auth=***&pwd=***&jwt=***&clientId=c",
        ),
        (
            "https://u:p@receiver.example.com/?secret=s#token=f",
            "https://u:***@receiver.example.com/?secret=***#token=f",
        ),
        # No secret: shown as written.
        (
            "https://receiver.example.com/services/T000/B000/last",
            "https://receiver.example.com/services/T000/B000/last",
        ),
        ("https://discord.com/channels/123/456", "https://discord.com/channels/123/456"),
        ("https://receiver.example.com/in?event=done&q=token", "https://receiver.example.com/in?event=done&q=token"),
        ("https://receiver.example.com/in?token", "https://receiver.example.com/in?token"),
        (
            "https://receiver.example.com/in?zipcode=75001&signer_code=S1",
            "https://receiver.example.com/in?zipcode=75001&signer_code=S1",
        ),
    ],
)
def test_credentials_are_masked_wherever_an_endpoint_is_shown(url: str, shown: str) -> None:
    assert masked(url) == shown
    assert masked(shown) == shown


@pytest.mark.parametrize(
    ("url", "holds"),
    [
        ("https://user:***@example.com/hook", True),
        ("https://***@example.com/hook", True),
        ("https://discord.com/api/webhooks/999/***", True),
        ("https://hooks.slack.com/services/T000/B001/***", True),
        ("https://receiver.example.com/moved?event=done&token=***", True),
        ("https://fn.azurewebsites.net/api/hook?code=***", True),
        ("https://user:pass@example.com/***", False),
        ("https://receiver.example.com/in?q=***", False),
        ("https://discord.com/api/webhooks/999/DISCORD-TOKEN", False),
    ],
)
def test_an_endpoint_holds_a_mask_only_where_a_secret_goes(url: str, holds: bool) -> None:
    assert holds_a_mask(url) is holds


@pytest.mark.parametrize(
    ("other", "same"),
    [
        ("https://HOOKS.example.com/elsewhere?x=1", True),
        ("https://hooks.example.com:443/", True),
        ("https://user:pass@hooks.example.com/", True),
        ("https://hooks.example.com:8443/", False),
        ("http://hooks.example.com/", False),
        ("https://hooks.example.com.evil.example/", False),
        ("https://evil.example/hooks.example.com", False),
        ("https://hooks.example.com@evil.example/", False),
    ],
)
def test_the_origin_of_an_endpoint_is_its_scheme_host_and_port(other: str, same: bool) -> None:
    assert same_origin("https://hooks.example.com/yousign", other) is same
