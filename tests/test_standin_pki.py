"""The stand-in's real keys and certificates, with ``STANDIN_TBOT_CA`` (tests/standin/pki.py).

What ``scripts/dev act`` gives the jobs: clients must read every file as they
read tbot's, so the oracle is ``cryptography`` itself (signatures checked
against the throwaway CA, the key matching both certificates) and, where it
is installed, ``openssl verify``.
"""

from __future__ import annotations

import base64
import datetime
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from standin.harness import Standin, error_lines, output_config
from standin.pki import BOT_PRINCIPAL, CA_CERT, make_ca


@pytest.fixture
def ca(standin: Standin) -> Path:
    folder = standin.tmp / "ca"
    make_ca(folder)
    standin.env["STANDIN_TBOT_CA"] = str(folder)
    return folder


def _ca_key(ca: Path) -> ec.EllipticCurvePublicKey:
    key = x509.load_pem_x509_certificate((ca / CA_CERT).read_bytes()).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def test_outputs_hold_real_keys_and_certificates_from_the_ca(standin: Standin, ca: Path) -> None:
    out = standin.tmp / "out"
    config = output_config(out, "kubernetes", kubernetes_cluster="k1")
    config["certificate_ttl"] = "20m"
    result = standin.start(config)
    assert result.returncode == 0, result.stderr

    ca_pem = (ca / CA_CERT).read_text()
    for name in ("teleport-host-ca.crt", "teleport-user-ca.crt", "teleport-database-ca.crt"):
        assert (out / name).read_text() == ca_pem
    key = serialization.load_pem_private_key((out / "key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert (out / "key").read_text().startswith("-----BEGIN PRIVATE KEY-----\n")  # PKCS #8
    tls = x509.load_pem_x509_certificate((out / "tlscert").read_bytes())
    tls.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem.encode()))
    assert tls.public_key() == key.public_key()
    lifetime = tls.not_valid_after_utc - tls.not_valid_before_utc
    assert lifetime == datetime.timedelta(minutes=21)  # the ttl, backdated a minute
    # OpenSSH: the public key is the same key, its certificate signed by the CA.
    public = serialization.load_ssh_public_key((out / "key.pub").read_bytes())
    assert public == key.public_key()
    cert = serialization.load_ssh_public_identity((out / "key-cert.pub").read_bytes())
    assert isinstance(cert, serialization.SSHCertificate)
    cert.verify_cert_signature()
    assert cert.signature_key() == _ca_key(ca)
    assert cert.public_key() == key.public_key()
    assert cert.valid_principals == [BOT_PRINCIPAL.encode()]
    # The identity file carries the same key and certificates.
    identity = (out / "identity").read_text()
    assert identity.startswith((out / "key").read_text())
    assert (out / "tlscert").read_text() in identity
    assert (out / "key-cert.pub").read_text() in identity
    if shutil.which("openssl"):
        ca_file, cert_file = str(out / "teleport-host-ca.crt"), str(out / "tlscert")
        verified = subprocess.run(
            ["openssl", "verify", "-CAfile", ca_file, cert_file],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        assert verified.returncode == 0, verified.stdout + verified.stderr


def test_embedded_kubeconfig_and_specific_tls_files_are_real_too(
    standin: Standin, ca: Path
) -> None:
    kube_dir, app_dir = standin.tmp / "kube", standin.tmp / "app"
    config = output_config(
        kube_dir, "kubernetes", kubernetes_cluster="k1", disable_exec_plugin=True
    )
    app = output_config(app_dir, "application", app_name="grafana", specific_tls_naming=True)
    config["outputs"] += app["outputs"]
    result = standin.start(config)
    assert result.returncode == 0, result.stderr

    kubeconfig = yaml.safe_load((kube_dir / "kubeconfig.yaml").read_text())
    user = kubeconfig["users"][0]["user"]
    embedded = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    embedded.verify_directly_issued_by(x509.load_pem_x509_certificate((ca / CA_CERT).read_bytes()))
    key = serialization.load_pem_private_key(base64.b64decode(user["client-key-data"]), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert embedded.public_key() == key.public_key()
    assert (app_dir / "tls.crt").read_text() == (app_dir / "tlscert").read_text()
    assert (app_dir / "tls.key").read_text() == (app_dir / "key").read_text()
    assert (app_dir / "tls.cas").read_text() == (ca / CA_CERT).read_text()
    # Each output has its own key, as each of tbot's outputs has.
    assert (app_dir / "key").read_text() != (kube_dir / "key").read_text()


def test_known_hosts_trusts_the_ca(standin: Standin, ca: Path) -> None:
    out = standin.tmp / "out"
    result = standin.start(output_config(out, "identity"))
    assert result.returncode == 0, result.stderr
    known_hosts = (out / "known_hosts").read_text()
    ca_ssh = _ca_key(ca).public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert f" {ca_ssh.decode()} type=host " in known_hosts


def test_a_ca_folder_without_a_ca_is_one_error(standin: Standin) -> None:
    standin.env["STANDIN_TBOT_CA"] = str(standin.tmp / "nothing-here")
    result = standin.start(output_config(standin.tmp / "out", "identity"))
    assert result.returncode == 1
    [error] = error_lines(result.stderr)
    assert "STANDIN_TBOT_CA=" in error
    assert "no usable CA there" in error
    assert "Traceback" not in result.stderr
