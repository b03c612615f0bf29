"""The sender trusts what the machine trusts, as tbot does, and nothing more
(docs/compatibility.md, tbot).

A private CA stands in for a TLS-inspecting proxy's CA: installed in the
"system" store through SSL_CERT_FILE / SSL_CERT_DIR (which OpenSSL's default
paths, and so truststore on Linux, honour), absent from certifi's bundle.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import requests.adapters
import urllib3.util.ssl_

from fault_server import (
    FaultServer,
    PrivateCA,
    clear_proxy_environment,
    clear_tls_environment,
    private_ca,
)
from teleport_auth.telemetry.event import build_event, event_json
from teleport_auth.telemetry.sender import Outcome, Submission
from teleport_auth.telemetry.tls import SystemTrustAdapter

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

CONFIG: Any = {"oneshot": True, "onboarding": {"join_method": "github"}, "outputs": []}
PRINTED = event_json(build_event(tbot_version="16.4.2", config=CONFIG))
ORIGINAL_SSL_CONTEXT = ssl.SSLContext


@pytest.fixture(scope="module")
def proxy_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    """The CA the "machine" trusts in most tests; it signs the endpoint's certificate."""
    return private_ca(tmp_path_factory.mktemp("proxy-ca"), name="Inspecting Proxy CA")


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    """A CA unrelated to the endpoint."""
    return private_ca(tmp_path_factory.mktemp("other-ca"), name="Unrelated CA")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_proxy_environment(monkeypatch)
    clear_tls_environment(monkeypatch)


@pytest.fixture
def endpoint(proxy_ca: PrivateCA) -> Iterator[FaultServer]:
    with FaultServer("ok", tls=proxy_ca.server_context()) as server:
        yield server


def _send(url: str) -> Outcome:
    submission = Submission(base_url=url, event_json=PRINTED)
    submission.start()
    return submission.wait(10)


def test_ca_in_ssl_cert_file_is_trusted(
    monkeypatch: pytest.MonkeyPatch,
    endpoint: FaultServer,
    proxy_ca: PrivateCA,
    other_ca: PrivateCA,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(proxy_ca.ca_file))
    monkeypatch.setenv("SSL_CERT_DIR", str(other_ca.cert_dir))
    outcome = _send(endpoint.url)
    assert (outcome.delivery, outcome.attempts) == ("confirmed", 1)
    assert len(endpoint.requests) == 1


def test_ca_in_ssl_cert_dir_is_trusted(
    monkeypatch: pytest.MonkeyPatch,
    endpoint: FaultServer,
    proxy_ca: PrivateCA,
    other_ca: PrivateCA,
) -> None:
    # The file names another CA: only the hashed directory can vouch for the endpoint.
    monkeypatch.setenv("SSL_CERT_FILE", str(other_ca.ca_file))
    monkeypatch.setenv("SSL_CERT_DIR", str(proxy_ca.cert_dir))
    outcome = _send(endpoint.url)
    assert (outcome.delivery, outcome.attempts) == ("confirmed", 1)


def test_ca_the_machine_does_not_trust_is_rejected_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch, endpoint: FaultServer, other_ca: PrivateCA
) -> None:
    # The control for the tests above: a store without the CA rejects the endpoint.
    monkeypatch.setenv("SSL_CERT_FILE", str(other_ca.ca_file))
    monkeypatch.setenv("SSL_CERT_DIR", str(other_ca.cert_dir))
    outcome = _send(endpoint.url)

    assert outcome.delivery == "not_sent"
    assert outcome.result is not None
    assert outcome.result.message.startswith("TLS failed: certificate verify failed")
    # Certainly not sent, so retried once; the server never saw a request.
    assert outcome.attempts == 2
    assert endpoint.wait_for_handshake_failures(2)
    assert endpoint.requests == []


def test_host_name_is_still_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A trusted CA, but a certificate for another name than the one connected to.
    elsewhere = private_ca(tmp_path / "ca", server_names="DNS:elsewhere.example")
    monkeypatch.setenv("SSL_CERT_FILE", str(elsewhere.ca_file))
    monkeypatch.setenv("SSL_CERT_DIR", str(elsewhere.cert_dir))
    with FaultServer("ok", tls=elsewhere.server_context()) as server:
        outcome = _send(server.url)
        assert server.requests == []
    assert outcome.delivery == "not_sent"
    assert outcome.result is not None
    assert "certificate verify failed" in outcome.result.message


def test_certifis_bundle_is_not_trusted_alongside_the_system_store(
    monkeypatch: pytest.MonkeyPatch,
    endpoint: FaultServer,
    proxy_ca: PrivateCA,
    other_ca: PrivateCA,
) -> None:
    # tbot trusts the machine's store only. Were certifi's bundle (which requests
    # falls back to) loaded on top of it, a CA the machine does not trust but
    # certifi lists would be accepted: here certifi's bundle "lists" the CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(other_ca.ca_file))
    monkeypatch.setenv("SSL_CERT_DIR", str(other_ca.cert_dir))
    monkeypatch.setattr(requests.adapters, "DEFAULT_CA_BUNDLE_PATH", str(proxy_ca.ca_file))
    outcome = _send(endpoint.url)
    assert outcome.delivery == "not_sent"
    assert endpoint.requests == []
    # The control: a plain requests call, which trusts certifi's bundle, is accepted.
    assert requests.get(endpoint.url, timeout=5).status_code == 200


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_an_explicit_ca_bundle_is_used(
    monkeypatch: pytest.MonkeyPatch,
    endpoint: FaultServer,
    proxy_ca: PrivateCA,
    other_ca: PrivateCA,
    variable: str,
) -> None:
    # The system store does not know the CA; the bundle named for requests does.
    monkeypatch.setenv("SSL_CERT_FILE", str(other_ca.ca_file))
    monkeypatch.setenv("SSL_CERT_DIR", str(other_ca.cert_dir))
    monkeypatch.setenv(variable, str(proxy_ca.ca_file))
    assert _send(endpoint.url).delivery == "confirmed"


def test_an_explicit_ca_bundle_replaces_the_system_store(
    monkeypatch: pytest.MonkeyPatch,
    endpoint: FaultServer,
    proxy_ca: PrivateCA,
    other_ca: PrivateCA,
) -> None:
    # As with any requests client: naming a bundle means trusting that bundle only.
    monkeypatch.setenv("SSL_CERT_FILE", str(proxy_ca.ca_file))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other_ca.ca_file))
    outcome = _send(endpoint.url)
    assert outcome.delivery == "not_sent"
    assert endpoint.requests == []


def test_nothing_else_in_the_process_changes_what_it_trusts(
    monkeypatch: pytest.MonkeyPatch, endpoint: FaultServer, proxy_ca: PrivateCA
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(proxy_ca.ca_file))
    assert _send(endpoint.url).delivery == "confirmed"

    # truststore was used through the sender's own context, not injected.
    in_use = {ssl.SSLContext, urllib3.util.ssl_.SSLContext, type(ssl.create_default_context())}
    assert in_use == {ORIGINAL_SSL_CONTEXT}
    # A plain requests call in the same process still trusts certifi's bundle
    # only, which does not hold the private CA.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(endpoint.url, timeout=5)


class Connection:
    """What cert_verify sets on a urllib3 connection pool."""

    cert_file: str | None = None
    key_file: str | None = None
    ca_certs: str | None = "unset"
    ca_cert_dir: str | None = "unset"
    cert_reqs: str | None = None


def test_the_adapter_uses_the_system_context_and_keeps_the_rest(tmp_path: Path) -> None:
    # A client certificate (requests' `cert`) still reaches the pool unchanged,
    # and certifi's bundle is cleared from it: None, as urllib3 reads "no bundle".
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.touch()
    key.touch()
    adapter = SystemTrustAdapter()
    request = requests.Request("POST", "https://telemetry.example.com/x").prepare()
    _, pool = adapter.build_connection_pool_key_attributes(request, True, (str(cert), str(key)))
    assert pool["ssl_context"] is adapter._system_context
    assert (pool["cert_file"], pool["key_file"]) == (str(cert), str(key))
    _, explicit = adapter.build_connection_pool_key_attributes(request, str(cert), None)
    assert "ssl_context" not in explicit
    connection = Connection()
    adapter.cert_verify(connection, "HTTPS://telemetry.example.com", True, (str(cert), str(key)))
    assert (connection.cert_file, connection.key_file) == (str(cert), str(key))
    assert connection.ca_certs is None
    assert connection.ca_cert_dir is None
    assert connection.cert_reqs == "CERT_REQUIRED"
