"""The collector's command line, as `python3 scripts/dev collector` runs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector_helpers import JSON, as_json, jsonl, make_request, post
from posthog_stub import PostHogStub
from tbot_collector.cli import main

REPO = Path(__file__).resolve().parents[1]

CLI_USAGE_ERRORS: list[tuple[str, list[str], dict[str, str], str]] = [
    ("no key", ["--posthog-host", "https://eu.i.posthog.com"], {}, "POSTHOG_API_KEY"),
    ("bad url", ["--posthog-host", "eu.i.posthog.com"], {"POSTHOG_API_KEY": "k"}, "http(s) URL"),
    ("bad port", ["--port", "70000"], {}, "--port"),
    ("exit-after 0", ["--exit-after", "0"], {}, "--exit-after"),
    ("flush interval nan", ["--posthog-flush-interval", "nan"], {}, "--posthog-flush-interval"),
    ("flush interval 0", ["--posthog-flush-interval", "0"], {}, "--posthog-flush-interval"),
]


@pytest.mark.parametrize("case", CLI_USAGE_ERRORS, ids=[c[0] for c in CLI_USAGE_ERRORS])
def test_cli_usage_errors_exit_2(
    case: tuple[str, list[str], dict[str, str], str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _, argv, env, message = case
    monkeypatch.delenv("POSTHOG_API_KEY", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--output", str(tmp_path / "e.jsonl")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python3 scripts/dev collector ")
    assert message in err
    assert not (tmp_path / "e.jsonl").exists()


def test_cli_unwritable_output_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--output", str(tmp_path / "missing" / "e.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"collector: cannot open {tmp_path / 'missing' / 'e.jsonl'}: ")
    assert err.count("\n") == 1


def test_cli_port_in_use_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["--port", str(busy.getsockname()[1]), "--output", str(tmp_path / "e")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("collector: cannot listen on 127.0.0.1:")
    assert "Traceback" not in err


# ---------------------------------------------------------------------------
# The collector in its own process


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tools"), str(REPO / "src")])
    env["PYTHONIOENCODING"] = "utf-8"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.pop("POSTHOG_API_KEY", None)
    env.update(extra)
    return env


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_collector_outlives_its_test() -> Iterator[None]:
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def start_cli(
    tmp_path: Path, *args: str, command: tuple[str, ...] | None = None, **env: str
) -> tuple[subprocess.Popen[str], int, Path]:
    """Start the collector (``python -m tbot_collector`` unless ``command``), wait for its port."""
    port_file, output = tmp_path / "port", tmp_path / "events.jsonl"
    # A safety net even if pytest itself dies: the collector stops by itself.
    safety = [] if "--exit-after" in args else ["--exit-after", "120"]
    proc = subprocess.Popen(
        [
            *(command or (sys.executable, "-m", "tbot_collector")),
            *("--output", str(output), "--port-file", str(port_file)),
            *safety,
            *args,
        ],
        cwd=tmp_path,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    _STARTED.append(proc)
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"collector did not start: {out}\n{err}")
        time.sleep(0.02)
    return proc, int(port_file.read_text()), output


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_serves_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    proc, port, output = start_cli(tmp_path)
    assert post(port, make_request("cli-1").SerializeToString()).status == 200
    assert post(port, as_json(make_request("cli-2")), JSON).status == 200
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"collector listening on http://127.0.0.1:{port} (events → {output})"
    assert lines[1].startswith("tbot.start distinct_id=cli-1 version=16.4.2 run_mode=one-shot")
    assert lines[2].startswith("tbot.start distinct_id=cli-2 ")
    assert lines[3:] == ["collector stopped (2 events)"]
    assert [r["distinct_id"] for r in jsonl(output)] == ["cli-1", "cli-2"]


def test_cli_exit_after_stops_by_itself(tmp_path: Path) -> None:
    proc, port, output = start_cli(tmp_path, "--exit-after", "1")
    assert post(port, make_request("ea-1").SerializeToString()).status == 200
    out, err = proc.communicate(timeout=10)  # no signal: it ends on its own
    assert proc.returncode == 0, err
    assert out.splitlines()[-1] == "collector stopped (1 events)"
    assert [r["distinct_id"] for r in jsonl(output)] == ["ea-1"]


def test_cli_kill_between_events_loses_nothing(tmp_path: Path) -> None:
    proc, port, output = start_cli(tmp_path, "--quiet")
    for i in range(2):
        assert post(port, make_request(f"k-{i}").SerializeToString()).status == 200
    proc.kill()
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert [r["distinct_id"] for r in jsonl(output)] == ["k-0", "k-1"]


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT", "--exit-after"])
def test_cli_stop_sends_the_queued_batch(tmp_path: Path, stop: str) -> None:
    # A minute's flush interval: only the flush on stop can deliver these.
    args = ["--quiet", "--posthog-flush-interval", "60"]
    if stop == "--exit-after":
        args += ["--exit-after", "2"]
    with PostHogStub() as stub:
        proc, port, _output = start_cli(
            tmp_path, *args, "--posthog-host", stub.url, POSTHOG_API_KEY="phc_cli"
        )
        for i in range(2):
            assert post(port, make_request(f"fw-{i}").SerializeToString()).status == 200
        if stop != "--exit-after":
            proc.send_signal(getattr(signal, stop))
        out, err = proc.communicate(timeout=20)
        events = stub.events()
    assert proc.returncode == 0, err
    assert err == ""
    assert out.splitlines()[-2:] == [
        "collector: sending 2 queued event(s) to PostHog (at most 10 s)",
        "collector stopped (2 events; PostHog: 2 forwarded)",
    ]
    assert [e["distinct_id"] for e in events] == ["fw-0", "fw-1"]
    assert len(stub.received) == 1  # one batch
    assert stub.received[0].api_key == "phc_cli"


def test_scripts_dev_collector_forwards_and_stops_on_a_signal(tmp_path: Path) -> None:
    # The documented command: .venv's python (the posthog SDK) and its own
    # PYTHONPATH whatever the caller's, and the signal reaches the collector.
    with PostHogStub() as stub:
        proc, port, output = start_cli(
            tmp_path,
            *("--posthog-host", stub.url, "--posthog-flush-interval", "60"),
            command=(sys.executable, str(REPO / "scripts" / "dev"), "collector"),
            POSTHOG_API_KEY="phc_dev",
            PYTHONPATH=str(tmp_path / "nothing-here"),
        )
        assert post(port, make_request("dev-1").SerializeToString()).status == 200
        proc.send_signal(signal.SIGTERM)  # to the process `scripts/dev` started as
        out, err = proc.communicate(timeout=20)
        events = stub.events()
    assert proc.returncode == 0, err
    assert out.splitlines()[-1] == "collector stopped (1 events; PostHog: 1 forwarded)"
    assert [e["distinct_id"] for e in events] == ["dev-1"]
    assert [r["distinct_id"] for r in jsonl(output)] == ["dev-1"]
