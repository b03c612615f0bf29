"""TLS for the sender: trust what the machine trusts, as tbot does.

tbot (Go) verifies against the system CA store and honours ``SSL_CERT_FILE``
and ``SSL_CERT_DIR``; requests on its own would use certifi's bundle, so a
runner whose TLS-inspecting proxy CA is installed system-wide would reject
the proxy's certificate where tbot accepts it. ``truststore`` gives an
``ssl.SSLContext`` backed by the system store (on Linux: OpenSSL's default
paths, which honour those two variables).

The context belongs to this sender's session only: nothing is injected into
``ssl`` or urllib3, so no other code in the process changes what it trusts.
An explicit ``REQUESTS_CA_BUNDLE`` (or ``CURL_CA_BUNDLE``) still wins, as
with any requests client: requests passes it as ``verify`` and this adapter
then behaves exactly like the stock one.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

import requests

# Shipped in _vendor/ (requirements.txt) but not installed in the dev venv, so
# mypy may not see it; its one call below is typed by hand.
import truststore  # type: ignore[import-not-found,unused-ignore]
from requests.adapters import HTTPAdapter

if TYPE_CHECKING:
    # The typeshed stubs' names for what the override below returns.
    from requests.adapters import _HostParams, _PoolKwargs


def system_trust_context() -> ssl.SSLContext:
    """A client context that verifies against the machine's trust store."""
    context: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return context


class SystemTrustAdapter(HTTPAdapter):
    """HTTPAdapter whose default verification (``verify=True``) uses the system store."""

    def __init__(self) -> None:
        self._system_context = system_trust_context()
        super().__init__()

    def build_connection_pool_key_attributes(
        self,
        request: requests.PreparedRequest,
        verify: bool | str,
        cert: str | tuple[str, str] | None = None,
    ) -> tuple[_HostParams, _PoolKwargs]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if verify is True:
            # Part of the pool key too: a pool built for an explicit bundle is never reused.
            pool_kwargs["ssl_context"] = self._system_context
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
        if verify is True and url.lower().startswith("https"):
            # The stock adapter points the pool at certifi's bundle here, which
            # urllib3 would load into our context on top of the system store.
            conn.ca_certs = None
            conn.ca_cert_dir = None


def system_trust_session() -> requests.Session:
    """A session whose https:// requests trust the machine's CA store."""
    session = requests.Session()
    session.mount("https://", SystemTrustAdapter())
    return session
