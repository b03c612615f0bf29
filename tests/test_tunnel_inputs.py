"""The daemon members' numbers of any length, and the listen/diag-port clash whatever the host."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from conftest import Job
from echo_server import free_port
from step_helpers import stop_daemon
from teleport_auth.family import member
from teleport_auth.family.tunnels import MAX_TIMEOUT_MS
from teleport_auth.inputs import InputError, env_name
from teleport_auth.main import main

pytestmark = pytest.mark.step


def read_proxy(**inputs: str) -> Any:
    """application-proxy's own inputs, read as the step reads them."""
    found = member("application-proxy")
    assert found is not None
    env = {env_name("listen"): f"tcp://127.0.0.1:{free_port()}"}
    env |= {env_name("diag-port"): str(free_port())}
    env |= {env_name(name.replace("_", "-")): value for name, value in inputs.items()}
    return found.read(env)


def refused(**inputs: str) -> str:
    with pytest.raises(InputError) as caught:
        read_proxy(**inputs)
    return caught.value.message


LONG_NUMBERS = [
    ("timeout-ms", "1" + "0" * 400),  # passed the check before, and broke the wait
    ("timeout-ms", "9" * 5000),  # beyond int()'s 4300 digits
    ("timeout-ms", "-" + "9" * 5000),
    ("timeout-ms", str(MAX_TIMEOUT_MS + 1)),
    ("diag-port", "9" * 5000),
    ("diag-port", "-" + "9" * 400),
    ("diag-port", "65536"),
]


@pytest.mark.parametrize(("name", "value"), LONG_NUMBERS, ids=lambda v: str(v)[:12])
def test_numbers_of_any_length_get_the_named_error(name: str, value: str) -> None:
    message = refused(**{name.replace("-", "_"): value})
    assert message.startswith(f"Input '{name}' must be ")
    assert len(message) < 200  # the value is shortened, not repeated in full


def test_the_largest_timeout_and_leading_zeros_are_accepted() -> None:
    own = read_proxy(timeout_ms=str(MAX_TIMEOUT_MS))
    assert own.tunnel.timeout_ms == MAX_TIMEOUT_MS
    # parseInt reads leading zeros as the number they lead: so does the step.
    port = free_port()
    own = read_proxy(timeout_ms="0" * 5000 + "1500", diag_port="0" * 5000 + str(port))
    assert (own.tunnel.timeout_ms, own.tunnel.diag_port) == (1500, port)


@pytest.mark.parametrize(
    ("name", "value"),
    [("timeout-ms", "1" + "0" * 400), ("timeout-ms", "9" * 5000), ("diag-port", "9" * 5000)],
    ids=["timeout-400-digits", "timeout-5000-digits", "diag-port-5000-digits"],
)
def test_the_step_says_so_before_tbot_starts(
    name: str, value: str, job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    job.env |= {
        "STANDIN_TBOT_VERSION": "18.6.4",
        env_name("listen"): f"tcp://127.0.0.1:{free_port()}",
        env_name("diag-port"): str(free_port()),
        env_name(name): value,
    }
    code = main(["application-proxy"])
    log = capsys.readouterr().out
    assert code == 1
    errors = [line for line in log.splitlines() if line.startswith("::error")]
    assert len(errors) == 1
    assert errors[0].startswith(f"::error::Input '{name}' must be ")
    assert not job.started_tbot


# tbot's diagnostics service binds 127.0.0.1:<diag-port>; these listen hosts need that too.
CLASHING = ["127.0.0.1", "localhost", "0.0.0.0", "[::]", "[::ffff:127.0.0.1]"]


@pytest.mark.parametrize("host", CLASHING)
def test_a_listen_host_that_binds_the_diag_address_clashes(host: str) -> None:
    port = free_port()
    message = refused(listen=f"tcp://{host}:{port}", diag_port=str(port))
    assert message == "Inputs 'diag-port' and 'listen' must use different ports."


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize("host", ["[::1]", "127.0.0.2"])
def test_another_address_on_the_diag_port_does_not_clash(host: str) -> None:
    # [::1]:P and 127.0.0.2:P can be bound beside 127.0.0.1:P.
    port = free_port()
    own = read_proxy(listen=f"tcp://{host}:{port}", diag_port=str(port))
    assert (own.tunnel.port, own.tunnel.diag_port) == (port, port)


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_tbot_runs_with_listen_on_ipv6_loopback_and_the_same_diag_port(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    job.env |= {
        "STANDIN_TBOT_VERSION": "18.6.4",
        env_name("listen"): f"tcp://[::1]:{port}",
        env_name("diag-port"): str(port),
    }
    code = main(["application-proxy"])
    log = capsys.readouterr().out
    pid = job.outputs.get("tbot-pid")
    if pid:
        stop_daemon(int(pid))
    assert code == 0, log
    assert job.outputs["application-proxy-port"] == str(port)
    assert job.outputs["diag-addr"] == f"127.0.0.1:{port}"
