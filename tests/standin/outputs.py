"""The files tbot writes into an output's directory, with random stand-in credentials.

Every output type that carries an identity writes the identity files
(``IDENTITY_FILES``); an identity output adds ``known_hosts`` and ``ssh_config``
(unless ``ssh_config: off``), a kubernetes output adds ``kubeconfig.yaml``, an
application output with ``specific_tls_naming`` adds ``tls.crt``, ``tls.key`` and
``tls.cas``. Files are 0600, new directories 0700.

The keys and certificates are random bytes shaped like PEM and OpenSSH text,
or, with ``STANDIN_TBOT_CA`` set, real ones from that throwaway CA (pki.py).
"""

from __future__ import annotations

import base64
import datetime
import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from .config import BotConfig, Output
from .console import Logger, fail, os_error

IDENTITY_FILES = (
    "identity",
    "key",
    "key.pub",
    "key-cert.pub",
    "tlscert",
    "teleport-host-ca.crt",
    "teleport-user-ca.crt",
    "teleport-database-ca.crt",
)
SSH_CONFIG_FILES = ("known_hosts", "ssh_config")
KUBECONFIG_FILE = "kubeconfig.yaml"
SPECIFIC_TLS_FILES = ("tls.crt", "tls.key", "tls.cas")
# Output types whose directory gets the identity files.
IDENTITY_OUTPUT_TYPES = ("identity", "kubernetes", "application")
# The SNI tbot puts in a kubeconfig for a proxy with TLS routing (Teleport's
# GetKubeTLSServerName).
KUBE_SNI_PREFIX = "kube-teleport-proxy-alpn."


def _b64_lines(data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[i : i + 64] for i in range(0, len(text), 64))


def fake_pem(label: str, size: int) -> str:
    # A DER SEQUENCE header makes the body start with "MII" like real certificates.
    der = b"\x30\x82" + size.to_bytes(2, "big") + os.urandom(size)
    return f"-----BEGIN {label}-----\n{_b64_lines(der)}\n-----END {label}-----\n"


def _ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def fake_ssh_blob(algorithm: str, size: int) -> str:
    """OpenSSH wire format: the algorithm name, then an RSA exponent or a cert nonce."""
    blob = _ssh_string(algorithm.encode("ascii"))
    if algorithm == "ssh-rsa":
        blob += _ssh_string(b"\x01\x00\x01") + _ssh_string(b"\x00" + os.urandom(size))
    else:
        blob += _ssh_string(os.urandom(32)) + os.urandom(size)
    return base64.b64encode(blob).decode("ascii")


def split_address(address: str) -> tuple[str, str]:
    """host and port of a proxy address; tbot assumes 443 when none is given."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or host.endswith(":"):
        return address.strip("[]"), "443"
    return host.strip("[]"), port


def teleport_cluster(cfg: BotConfig, out: Output) -> str:
    """The Teleport cluster name: the stand-in takes the proxy's host for it."""
    return out.cluster or split_address(cfg.address)[0]


class Material:
    """An output's key, public key, SSH and TLS certificates and the CAs beside them."""

    def __init__(self, env: Mapping[str, str], cfg: BotConfig) -> None:
        ca_folder = env.get("STANDIN_TBOT_CA", "")
        if ca_folder:
            self._issue(Path(ca_folder), cfg)
            return
        self.key = fake_pem("RSA PRIVATE KEY", 1190)
        self.public = f"ssh-rsa {fake_ssh_blob('ssh-rsa', 256)}\n"
        cert_type = "ssh-rsa-cert-v01@openssh.com"
        self.cert = f"{cert_type} {fake_ssh_blob(cert_type, 900)}\n"
        self.tls = fake_pem("CERTIFICATE", 1100)
        self.host_ca, self.user_ca, self.db_ca = (fake_pem("CERTIFICATE", 900) for _ in range(3))
        self.host_ca_ssh = f"ssh-rsa {fake_ssh_blob('ssh-rsa', 256)}"

    def _issue(self, folder: Path, cfg: BotConfig) -> None:
        try:
            from . import pki  # cryptography only when asked for
        except ImportError as exc:
            fail(f"tbot stand-in: STANDIN_TBOT_CA needs the cryptography package: {exc}")
        try:
            made = pki.issue(folder, username="bot-stand-in", ttl=_ttl(cfg))
        except ValueError as exc:
            fail(f"tbot stand-in: {exc}")
        self.key, self.public, self.cert, self.tls = (
            made.key,
            made.public,
            made.ssh_cert,
            made.tls_cert,
        )
        # One throwaway CA stands in for Teleport's host, user and database CAs.
        self.host_ca = self.user_ca = self.db_ca = made.ca_cert
        self.host_ca_ssh = made.ca_ssh


def _ttl(cfg: BotConfig) -> datetime.timedelta | None:
    if not cfg.certificate_ttl:
        return None
    from teleport_auth.goduration import DurationError, parse_duration_ns

    try:
        return datetime.timedelta(microseconds=parse_duration_ns(cfg.certificate_ttl) // 1000)
    except DurationError:
        return None  # the config check refused it already


def render_identity(
    out: Output, dest: Path, cfg: BotConfig, material: Material | None = None
) -> dict[str, str]:
    address = cfg.address
    host = split_address(address)[0]
    cluster = teleport_cluster(cfg, out)
    m = material or Material({}, cfg)
    key, public, cert, tls = m.key, m.public, m.cert, m.tls
    host_ca, user_ca, db_ca, host_ca_ssh = m.host_ca, m.user_ca, m.db_ca, m.host_ca_ssh
    known_hosts = (
        f"@cert-authority {cluster},*.{cluster} {host_ca_ssh} type=host clustername={cluster}\n"
    )
    files = {
        "identity": key + cert + tls + known_hosts + host_ca + user_ca,
        "key": key,
        "key.pub": public,
        "key-cert.pub": cert,
        "tlscert": tls,
        "teleport-host-ca.crt": host_ca,
        "teleport-user-ca.crt": user_ca,
        "teleport-database-ca.crt": db_ca,
    }
    if out.kind == "identity" and out.ssh_config != "off":
        tbot_path = _which("tbot")
        files["known_hosts"] = known_hosts
        files["ssh_config"] = (
            f"# Begin generated Teleport configuration for {address} by tbot\n\n"
            f"# Common flags for all {cluster} hosts\n"
            f"Host *.{cluster} {host}\n"
            f'    UserKnownHostsFile "{dest / "known_hosts"}"\n'
            f'    IdentityFile "{dest / "key"}"\n'
            f'    CertificateFile "{dest / "key-cert.pub"}"\n\n'
            f"# Flags for all {cluster} hosts except the proxy\n"
            f"Host *.{cluster} !{host}\n"
            "    Port 3022\n"
            f'    ProxyCommand "{tbot_path}" proxy --destination-dir={dest} '
            f"--proxy-server={address} ssh --cluster={cluster}  %r@%h:%p\n\n"
            "# End generated Teleport configuration\n"
        )
    if out.kind == "kubernetes":
        files[KUBECONFIG_FILE] = render_kubeconfig(out, dest, cfg, files)
    if out.kind == "application" and out.specific_tls_naming:
        files["tls.crt"], files["tls.key"], files["tls.cas"] = tls, key, host_ca
    return files


def render_kubeconfig(out: Output, dest: Path, cfg: BotConfig, files: dict[str, str]) -> str:
    """A kubeconfig for the proxy's Kubernetes address, as tbot writes it with TLS routing.

    Real tbot's user runs ``tbot kube credentials`` as an exec plugin by default;
    the stand-in has no such command, so its user points at the ``tlscert`` and
    ``key`` files beside the kubeconfig (and the cluster at ``teleport-host-ca.crt``).
    With ``disable_exec_plugin: true`` both embed the data, as real tbot does.
    """
    host, port = split_address(cfg.address)
    dest = Path(os.path.abspath(dest))  # absolute, as tbot makes the destination path
    name = f"{teleport_cluster(cfg, out)}-{out.kubernetes_cluster}"
    cluster: dict[str, str] = {
        "server": f"https://{host}:{port}",
        "tls-server-name": KUBE_SNI_PREFIX + host,
    }
    user: dict[str, str]
    if out.disable_exec_plugin:
        cluster["certificate-authority-data"] = _b64(files["teleport-host-ca.crt"])
        user = {
            "client-certificate-data": _b64(files["tlscert"]),
            "client-key-data": _b64(files["key"]),
        }
    else:
        cluster["certificate-authority"] = str(dest / "teleport-host-ca.crt")
        user = {"client-certificate": str(dest / "tlscert"), "client-key": str(dest / "key")}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
        "users": [{"name": name, "user": user}],
    }
    # Sorted keys, block style: the layout of client-go's clientcmd.Write.
    return yaml.safe_dump(config, sort_keys=True, default_flow_style=False)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("ascii")).decode("ascii")


def _which(name: str) -> str:
    """shutil.which without importing shutil (it pulls in bz2 and lzma: ~10 ms)."""
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    return name


def ensure_directory(path: Path) -> None:
    """Create missing directories 0700 (tbot's mode); leave existing ones alone."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700)
        os.chmod(directory, 0o700)  # the umask must not widen or narrow it


def write_file(path: Path, content: str, symlinks: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    if symlinks != "insecure":
        flags |= os.O_NOFOLLOW  # secure modes refuse to write through a symlink
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        fail(f"writing {path}: open {path}: {os_error(exc)}")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(content)


def write_outputs(cfg: BotConfig, console: Logger, env: Mapping[str, str]) -> None:
    for out in cfg.outputs:
        dest = out.destination
        if out.kind not in IDENTITY_OUTPUT_TYPES or dest.kind != "directory":
            console.info(
                "TBOT:OUTPUTS",
                "Generated output.",
                "tbot/output.go:201",
                output=out.kind,
                destination=dest.kind,
            )
            continue
        directory = Path(dest.path)
        try:
            ensure_directory(directory)
        except OSError as exc:
            fail(f"initializing destination {directory}: {os_error(exc)}")
        files = render_identity(out, directory, cfg, Material(env, cfg))
        for name, content in files.items():
            write_file(directory / name, content, dest.symlinks)
        console.info(
            "TBOT:OUTPUTS",
            "Generated output.",
            "tbot/output.go:201",
            output=out.kind,
            destination=f"directory: {directory}",
        )
