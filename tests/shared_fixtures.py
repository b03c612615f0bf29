"""Fixtures several test modules share; conftest registers this module (pytest_plugins)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import go_yaml
from act_harness import CollectorProcess, start_collector
from echo_server import EchoServer
from standin.harness import Collector, Standin, clean_env
from standin.harness import collector as in_process_collector
from standin.install import install_standin

# Read now: the job fixture replaces os.environ during a test.
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def goyaml_binary(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Go's yaml.v3 reader (tests/goyaml), built once per run; None where Go is not installed."""
    if not go_yaml.available():
        return None
    return go_yaml.build(tmp_path_factory.mktemp("goyaml"))


@pytest.fixture
def goyaml(goyaml_binary: Path | None) -> Path:
    """For the tests that need yaml.v3: in CI its absence fails them, elsewhere skips them."""
    if goyaml_binary is None:
        if IN_CI:
            pytest.fail(f"{go_yaml.MISSING}, and CI=true: it must be there")
        pytest.skip(go_yaml.MISSING)
    return goyaml_binary


@pytest.fixture(scope="session")
def tbot_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tbot stand-in, installed once as ``tbot`` in a directory of its own."""
    return install_standin(tmp_path_factory.mktemp("bin"))


@pytest.fixture(scope="session")
def bin_dir(tbot_exe: Path) -> Path:
    """A directory to put first on PATH: it holds the stand-in as ``tbot`` and nothing else."""
    return tbot_exe.parent


@pytest.fixture
def standin(tbot_exe: Path, tmp_path: Path) -> Standin:
    return Standin(tbot_exe, clean_env(), tmp_path)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    """A TCP echo server on 127.0.0.1: the backend behind the stand-in's tunnels."""
    with EchoServer() as server:
        yield server


@pytest.fixture(name="collector")
def collector_fixture() -> Iterator[Collector]:
    """An in-process reporting endpoint, for the stand-in's own telemetry."""
    with in_process_collector() as endpoint:
        yield endpoint


@pytest.fixture
def collector_process(tmp_path: Path) -> Iterator[CollectorProcess]:
    """The collector as a user runs it (its own process), for the act runs."""
    running = start_collector(tmp_path, output=subprocess.DEVNULL)
    try:
        yield running
    finally:
        running.stop()
