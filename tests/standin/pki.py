"""Real keys and certificates for the stand-in's outputs, from a throwaway CA.

With ``STANDIN_TBOT_CA`` naming a folder made by ``python tests/standin/pki.py
DIR`` (``scripts/dev act`` makes one per run, in its private temporary
directory), every output the stand-in writes holds a fresh ECDSA P-256 key
(PKCS #8, as Teleport writes non-RSA keys), an X.509 client certificate and an
OpenSSH user certificate signed by that CA, and the CA's certificate in place
of Teleport's host, user and database CAs. ``kubectl``, ``curl``, ``psql`` and
``ssh`` read them and get as far as connecting; nothing trusts them.

Without it the stand-in writes random bytes shaped like PEM and OpenSSH text
(outputs.py), which costs no ``cryptography`` import on each run. This module
is only imported when ``STANDIN_TBOT_CA`` is set.
"""

from __future__ import annotations

import datetime
import os
import secrets
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
CA_NAME = "tbot stand-in throwaway CA"
# tbot's default certificate lifetime, when the config names none.
DEFAULT_TTL = datetime.timedelta(hours=1)
# Certificates start a minute early, as Teleport backdates them for clock skew.
BACKDATE = datetime.timedelta(minutes=1)
# The principal tbot's certificates carry when the bot has no logins of its own.
BOT_PRINCIPAL = "-teleport-internal-join"


class Credentials:
    """What one output gets: key, public key, SSH and TLS certificates, the CA."""

    def __init__(
        self, *, key: str, public: str, ssh_cert: str, tls_cert: str, ca_cert: str, ca_ssh: str
    ) -> None:
        self.key = key
        self.public = public
        self.ssh_cert = ssh_cert
        self.tls_cert = tls_cert
        self.ca_cert = ca_cert
        self.ca_ssh = ca_ssh


def make_ca(folder: Path) -> None:
    """Write a new CA's certificate and key (0600) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write(folder / CA_KEY, _private_pem(key))
    _write(folder / CA_CERT, cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))


def issue(folder: Path, *, username: str, ttl: datetime.timedelta | None) -> Credentials:
    """A new key with certificates for ``username``, signed by the CA in ``folder``."""
    try:
        ca_cert = x509.load_pem_x509_certificate((folder / CA_CERT).read_bytes())
        ca_key = serialization.load_pem_private_key((folder / CA_KEY).read_bytes(), None)
    except (OSError, ValueError) as exc:
        raise ValueError(f"STANDIN_TBOT_CA={folder}: no usable CA there ({exc})") from exc
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"STANDIN_TBOT_CA={folder}: the CA key is not an ECDSA key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    until = now + (ttl if ttl and ttl > datetime.timedelta(0) else DEFAULT_TTL)
    tls = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, username)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ssh = (
        serialization.SSHCertificateBuilder()
        .public_key(key.public_key())
        .serial(secrets.randbits(64))
        .type(serialization.SSHCertificateType.USER)
        .key_id(username.encode())
        .valid_principals([BOT_PRINCIPAL.encode()])
        .valid_after(int((now - BACKDATE).timestamp()))
        .valid_before(int(until.timestamp()))
        .add_extension(b"permit-pty", b"")
        .sign(ca_key)
    )
    openssh = serialization.Encoding.OpenSSH
    public_format = serialization.PublicFormat.OpenSSH
    return Credentials(
        key=_private_pem(key),
        public=key.public_key().public_bytes(openssh, public_format).decode("ascii") + "\n",
        ssh_cert=ssh.public_bytes().decode("ascii") + "\n",
        tls_cert=tls.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        ca_cert=ca_cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        ca_ssh=ca_key.public_key().public_bytes(openssh, public_format).decode("ascii"),
    )


def _private_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: pki.py DIR  (writes a throwaway CA: DIR/ca.crt, DIR/ca.key)", file=sys.stderr)
        return 2
    make_ca(Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
