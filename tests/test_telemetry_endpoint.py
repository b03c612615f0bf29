"""Which telemetry endpoints are accepted, and that rejections never echo secrets."""

from __future__ import annotations

import pytest

from teleport_auth.telemetry import ADDRESS_ENV, DEFAULT_ENDPOINT
from teleport_auth.telemetry.endpoint import EndpointRejected, endpoint_host, resolve_endpoint


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, DEFAULT_ENDPOINT, id="unset"),
        pytest.param({ADDRESS_ENV: ""}, DEFAULT_ENDPOINT, id="empty"),
        pytest.param(
            {ADDRESS_ENV: "https://telemetry.example.com"},
            "https://telemetry.example.com",
            id="https",
        ),
        pytest.param(
            {ADDRESS_ENV: "https://telemetry.example.com/"},
            "https://telemetry.example.com",
            id="trailing-slash",
        ),
        pytest.param(
            {ADDRESS_ENV: "https://telemetry.example.com:8443/base/"},
            "https://telemetry.example.com:8443/base",
            id="port-and-path",
        ),
        pytest.param({ADDRESS_ENV: "HTTPS://Example.COM"}, "https://Example.COM", id="scheme-case"),
        pytest.param({ADDRESS_ENV: "https://192.0.2.10"}, "https://192.0.2.10", id="https-ipv4"),
        pytest.param(
            {ADDRESS_ENV: "https://[2001:db8::1]:443"}, "https://[2001:db8::1]:443", id="https-ipv6"
        ),
        pytest.param(
            {ADDRESS_ENV: "http://127.0.0.1:8080"}, "http://127.0.0.1:8080", id="http-127.0.0.1"
        ),
        pytest.param({ADDRESS_ENV: "http://127.1.2.3:80/"}, "http://127.1.2.3:80", id="http-127/8"),
        pytest.param(
            {ADDRESS_ENV: "http://[::1]:9000"}, "http://[::1]:9000", id="http-ipv6-loopback"
        ),
        pytest.param(
            {ADDRESS_ENV: "http://localhost:9000"}, "http://localhost:9000", id="http-localhost"
        ),
        pytest.param(
            {ADDRESS_ENV: "http://LocalHost"}, "http://LocalHost", id="http-localhost-case"
        ),
    ],
)
def test_accepted(env: dict[str, str], expected: str) -> None:
    assert resolve_endpoint(env) == expected


SECRET = "s3cr3t-value"


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("ftp://telemetry.example.com", id="ftp"),
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("telemetry.example.com", id="no-scheme"),
        pytest.param("//telemetry.example.com", id="scheme-relative"),
        pytest.param("http://telemetry.example.com", id="http-remote"),
        pytest.param("http://10.0.0.1", id="http-private-ip"),
        pytest.param("http://localhost.example.com", id="http-localhost-lookalike"),
        pytest.param("http://127.0.0.1.nip.io", id="http-loopback-lookalike"),
        pytest.param("http://[::2]", id="http-ipv6-not-loopback"),
        pytest.param("https://", id="no-host"),
        pytest.param("https:///path", id="empty-host"),
        pytest.param("https://:443", id="port-only"),
        pytest.param(f"https://user:{SECRET}@telemetry.example.com", id="userinfo"),
        pytest.param(f"https://{SECRET}@telemetry.example.com", id="user-only"),
        pytest.param(f"http://{SECRET}@127.0.0.1", id="userinfo-loopback"),
        pytest.param(f"https://telemetry.example.com/?token={SECRET}", id="query"),
        pytest.param("https://telemetry.example.com/?", id="empty-query"),
        pytest.param(f"https://telemetry.example.com/#{SECRET}", id="fragment"),
        pytest.param("https://telemetry.example.com/a b", id="space"),
        pytest.param(" https://telemetry.example.com", id="leading-space"),
        pytest.param("https://telemetry.example.com\n", id="newline"),
        pytest.param("https://telemetry.example.com\t", id="tab"),
        pytest.param("https://telemetry.example.com/\x00", id="nul"),
        pytest.param("https://telemetry.example.com/\x7f", id="del"),
        pytest.param("https://telemetry.exämple.com", id="non-ascii"),
        pytest.param("https://tele_metry.example.com", id="underscore-host"),
        pytest.param("https://telemetry.example.com:99999", id="port-out-of-range"),
        pytest.param("https://telemetry.example.com:abc", id="port-not-a-number"),
        pytest.param("https://telemetry.example.com:0", id="port-zero"),
        pytest.param("https://telemetry.example.com:", id="port-empty"),
        pytest.param("https://[::1", id="broken-ipv6"),
        pytest.param("https://[not-an-ip]", id="bracketed-name"),
        pytest.param("https://telemetry.example.com\\@evil.example", id="backslash"),
    ],
)
def test_rejected(address: str) -> None:
    with pytest.raises(EndpointRejected) as caught:
        resolve_endpoint({ADDRESS_ENV: address})

    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert message.startswith(ADDRESS_ENV)
    assert message.endswith(".")
    assert "\n" not in message
    # Never repeated: the value may hold a credential.
    assert SECRET not in message
    assert address.strip() not in message


def test_rejection_names_the_problem() -> None:
    with pytest.raises(EndpointRejected, match="credentials"):
        resolve_endpoint({ADDRESS_ENV: "https://u:p@telemetry.example.com"})
    with pytest.raises(EndpointRejected, match="loopback"):
        resolve_endpoint({ADDRESS_ENV: "http://telemetry.example.com"})
    with pytest.raises(EndpointRejected, match="query or fragment"):
        resolve_endpoint({ADDRESS_ENV: "https://telemetry.example.com?x=1"})


@pytest.mark.parametrize(
    ("url", "host"),
    [
        pytest.param(DEFAULT_ENDPOINT, "reporting-tbot.teleportinfra.sh", id="default"),
        pytest.param("https://t.example.com:8443/base", "t.example.com:8443", id="port-and-path"),
        pytest.param("http://[::1]:9000", "[::1]:9000", id="ipv6"),
    ],
)
def test_endpoint_host(url: str, host: str) -> None:
    assert endpoint_host(url) == host


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("https://a b.example", "must be a URL of visible ASCII characters, without spaces"),
        ("https://telemetry.example.com/#x", "must not contain a query or fragment"),
        ("https://telemetry.example.com:abc", "is not a valid URL"),
        ("https://telemetry.example.com\\x", "is not a valid URL"),
        ("ftp://telemetry.example.com", "must be an https:// URL"),
        ("https://u@telemetry.example.com", "must not contain credentials (user:password@)"),
        ("https://:443", "must name a host"),
        ("https://[v1.x]", "has an invalid IPv6 address"),  # an IPvFuture literal
        ("https://tele_metry.example.com", "has an invalid host name"),
        ("https://telemetry.example.com:0", "has an invalid port"),
        (
            "http://telemetry.example.com",
            "must be an https:// URL (plain http:// is only allowed to loopback)",
        ),
    ],
)
def test_each_rejection_says_what_is_wrong(address: str, problem: str) -> None:
    with pytest.raises(EndpointRejected) as caught:
        resolve_endpoint({ADDRESS_ENV: address})
    assert caught.value.message == f"{ADDRESS_ENV} {problem}."


def test_a_path_keeps_its_inner_slashes_and_xs() -> None:
    # Only trailing slashes go: the base URL's path is kept as given.
    url = "https://telemetry.example.com/X/bX//"
    assert resolve_endpoint({ADDRESS_ENV: url}) == "https://telemetry.example.com/X/bX"
