"""tbot's configuration (``version: v2``), as much of it as the family writes, typed.

Each entry mirrors tbot's schema (``lib/tbot/config``): the keys the originals
write, with the values they take. Only mypy reads this module: the config is
plain dicts and lists at run time (written as JSON), so the step never pays
for importing it. Import it under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

from typing import Literal, TypedDict

Symlinks = Literal["secure", "try-secure", "insecure"]


class DirectoryDestination(TypedDict):
    type: Literal["directory"]
    symlinks: Symlinks
    path: str


class _IdentityOutput(TypedDict):
    type: Literal["identity"]
    destination: DirectoryDestination
    roles: list[str]


class IdentityOutput(_IdentityOutput, total=False):
    # tbot >= 17.2.8; written only when true, as the original does.
    allow_reissue: bool


class KubernetesOutput(TypedDict):
    type: Literal["kubernetes"]
    destination: DirectoryDestination
    roles: list[str]
    kubernetes_cluster: str


class ApplicationOutput(TypedDict):
    type: Literal["application"]
    destination: DirectoryDestination
    roles: list[str]
    app_name: str


class DatabaseTunnelService(TypedDict):
    type: Literal["database-tunnel"]
    listen: str
    roles: list[str]
    service: str
    database: str
    username: str


class ApplicationTunnelService(TypedDict):
    type: Literal["application-tunnel"]
    listen: str
    roles: list[str]
    app_name: str


class ApplicationProxyService(TypedDict):
    # No roles and no app name: the proxy serves every application the bot may reach.
    type: Literal["application-proxy"]
    listen: str


Output = IdentityOutput | KubernetesOutput | ApplicationOutput
Service = DatabaseTunnelService | ApplicationTunnelService | ApplicationProxyService


class Onboarding(TypedDict):
    join_method: Literal["github"]
    token: str
    ca_pins: list[str]


class Storage(TypedDict):
    type: Literal["memory"]


class _BotConfig(TypedDict):
    version: Literal["v2"]
    proxy_server: str
    oneshot: bool
    onboarding: Onboarding
    storage: Storage
    outputs: list[Output]
    services: list[Service]


class BotConfig(_BotConfig, total=False):
    certificate_ttl: str
