"""The benchmark's own parts (benchmarks/steptime): the instant tbot, parsing, the anchor.

The benchmark's figures are printed by ``python3 scripts/dev bench``; these tests check
that what it measures with is right, not how fast anything is.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from conftest import TBOT_IDENTITY_FILES, TBOT_SSH_FILES  # noqa: E402
from steptime.act_runs import act_once, check_probe  # noqa: E402
from steptime.anchor import prepare_anchor, read_runs, refused_using, rewrite_using  # noqa: E402
from steptime.context import Context  # noqa: E402
from steptime.direct import ImportProfile, parse_importtime, step_modules  # noqa: E402
from steptime.instant_tbot import (  # noqa: E402
    FIRST_LINE,
    event_printed_first,
    install_tbot,
    read_probe,
    tbot_seconds,
)
from steptime.model import MODES, BenchError, Pythons, Workspace  # noqa: E402
from steptime.prepare import drop_host_only_variables, resolve_python  # noqa: E402
from steptime.stats import Stats, Target, median_difference  # noqa: E402

# The original action's check of `tbot version` (dist/index.js) and its minimum.
ORIGINAL_VERSION = re.compile(r"Teleport (?:Enterprise )?v(?P<version>[^ ]*)")


@pytest.fixture
def tbot(tmp_path: Path) -> Path:
    return install_tbot(tmp_path / "bin")


def run_tbot(tbot: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(tbot), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_instant_tbot_version_line(tbot: Path) -> None:
    match = ORIGINAL_VERSION.search(run_tbot(tbot, "version"))
    assert match is not None
    major, minor, patch = (int(p) for p in match["version"].split(".")[:3])
    assert (major, minor, patch) >= (16, 0, 0)


@pytest.mark.parametrize(
    "config",
    [
        # The original's YAML (js-yaml): the output list indented.
        "outputs:\n  - type: identity\n    destination:\n      type: directory\n"
        "      symlinks: try-secure\n      path: {dest}\n    roles: []\n",
        # This project's (PyYAML): the list not indented, the path quoted.
        "outputs:\n- type: identity\n  destination:\n    type: directory\n    path: '{dest}'\n",
        # JSON (which YAML parsers, tbot's too, read as YAML).
        '{{"outputs": [{{"destination": {{"path": "{dest}", "type": "directory"}}}}]}}',
        '{{\n  "outputs": [\n    {{\n      "destination": {{\n        "path": "{dest}",\n'
        '        "type": "directory"\n      }}\n    }}\n  ]\n}}\n',
    ],
    ids=["original", "project", "json-one-line", "json-indented"],
)
def test_instant_tbot_start_writes_the_identity_output(
    tbot: Path, tmp_path: Path, config: str
) -> None:
    dest = tmp_path / "identity-dir"
    cfg = tmp_path / "bot-config.yaml"
    cfg.write_text(config.format(dest=dest))
    times = tmp_path / "times"
    out = run_tbot(tbot, "start", "-c", str(cfg), env={"BENCH_TBOT_TIMES": str(times)})
    assert out.splitlines()[0] == FIRST_LINE
    assert {p.name for p in dest.iterdir()} == TBOT_IDENTITY_FILES | TBOT_SSH_FILES
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in dest.iterdir())
    assert times.read_text().split()[0] == "start"


def test_instant_tbot_works_as_long_as_asked(tbot: Path, tmp_path: Path) -> None:
    dest = tmp_path / "d"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"outputs:\n- destination:\n    path: {dest}\n")
    times = tmp_path / "times"
    env = {"BENCH_TBOT_TIMES": str(times), "BENCH_TBOT_SLEEP": "0.3"}
    run_tbot(tbot, "version", env=env)
    run_tbot(tbot, "start", "-c", str(cfg), env=env)
    # Its own clock: at least the time it was told to work.
    assert tbot_seconds(times) >= 0.3


def test_instant_tbot_rejects_what_it_does_not_do(tbot: Path) -> None:
    done = subprocess.run([str(tbot), "init"], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("ERROR: ")


def test_tbot_seconds_needs_one_version_and_one_start(tmp_path: Path) -> None:
    times = tmp_path / "times"
    times.write_text("version 1000000000 1002000000\nstart 1003000000 1010000000\n")
    assert tbot_seconds(times) == pytest.approx(0.009)
    times.write_text("version 1000000000 1002000000\n")
    with pytest.raises(BenchError, match="tbot start"):
        tbot_seconds(times)
    with pytest.raises(BenchError):
        tbot_seconds(tmp_path / "missing")


def test_read_probe(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.write_text("parent=/usr/bin/node\npycs=0\nnoise\n")
    assert read_probe(probe) == {"parent": "/usr/bin/node", "pycs": "0"}
    with pytest.raises(BenchError):
        read_probe(tmp_path / "none")


def test_event_printed_first() -> None:
    event = ["::group::Anonymous telemetry event", "{", "}", "::endgroup::"]
    tbot = ["::group::tbot start", FIRST_LINE, "done"]
    assert event_printed_first(["x", *event, *tbot])
    assert not event_printed_first(["x", *tbot, *event])
    # A group still open when tbot speaks is not "before".
    assert not event_printed_first(["::group::Anonymous telemetry event", FIRST_LINE])
    assert not event_printed_first(tbot)


IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       277 |        704 | _frozen_importlib_external
import time:       593 |       1182 | encodings
import time:        77 |       3600 | runpy
import time:      1610 |       1610 | teleport_auth
import time:       500 |        500 |   yaml
import time:      1695 |      50720 | teleport_auth.main
import time:       900 |       9000 | teleport_auth.telemetry.reporter
"""


def test_importtime_parsing_and_the_steps_own_modules() -> None:
    profile = ImportProfile(parse_importtime(IMPORTTIME), 0.1)
    assert [e.depth for e in profile.entries] == [0, 0, 0, 0, 1, 0, 0]
    assert profile.startup_us == 704 + 1182
    assert profile.action_us == 3600 + 1610 + 50720 + 9000
    assert step_modules(profile) == [
        "teleport_auth",
        "teleport_auth.main",
        "teleport_auth.telemetry.reporter",
    ]


def test_stats_and_targets() -> None:
    stats = Stats.of([0.1, 0.2, 0.3, 0.4, 0.5])
    assert stats.median == pytest.approx(0.3)
    assert stats.p90 == pytest.approx(0.46)
    assert median_difference([3.0, 5.0, 9.0], [1.0, 1.0, 1.0]) == 4.0
    assert Target("ratio", 0.5, 0.6, "").passed
    assert not Target("ms", 21.0, 20.0).passed
    assert Target("runs", 0, 0, "runs").show(2) == "2 runs"
    with pytest.raises(BenchError):
        Stats.of([])


ORIGINAL_ACTION_YML = """\
name: Teleport Auth
inputs:
    proxy:
        required: true
runs:
    using: node24
    main: dist/index.js
"""


def test_read_runs() -> None:
    assert read_runs(ORIGINAL_ACTION_YML) == ("node24", "dist/index.js")
    with pytest.raises(BenchError, match="JavaScript"):
        read_runs("runs:\n  using: composite\n  steps: []\n")


def test_refused_using_reads_acts_message() -> None:
    log = (
        "[demo/auth] The runs.using key in action.yml must be one of: "
        "[composite docker node12 node16 node20 node24], got node99\n"
    )
    assert refused_using(log) == ["node12", "node16", "node20", "node24"]
    assert refused_using("Job succeeded") is None


def make_checkout(root: Path, using: str, main_js: str = "process.exit(0);\n") -> Path:
    checkout = root / "checkout"
    (checkout / "dist").mkdir(parents=True)
    (checkout / "action.yml").write_text(ORIGINAL_ACTION_YML.replace("node24", using))
    (checkout / "dist" / "index.js").write_text(main_js)
    (checkout / ".github" / "workflows").mkdir(parents=True)
    (checkout / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    git = ["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "--no-gpg-sign", "-m", "the original"], check=True)
    return checkout


def test_prepare_anchor_lays_out_the_original_with_the_demo_workflow(tmp_path: Path) -> None:
    checkout = make_checkout(tmp_path, "node24")
    anchor = prepare_anchor(checkout, tmp_path / "ws")
    ws = anchor.workspace
    assert (ws / "dist" / "index.js").read_text() == "process.exit(0);\n"
    # Only the demo workflow runs: the checkout's own CI is left out.
    assert [p.name for p in (ws / ".github" / "workflows").iterdir()] == ["demo.yml"]
    assert (ws / ".github" / "workflows" / "demo.yml").read_text() == (
        REPO / "demo" / "workflow.yml"
    ).read_text()
    assert anchor.revision.endswith(" the original")
    assert (anchor.using, anchor.ran_as) == ("node24", "node24")
    assert "as checked out" in anchor.using_note
    clean = subprocess.run(
        ["git", "-C", str(ws), "status", "--porcelain"], capture_output=True, text=True, check=True
    )
    assert clean.stdout == ""


def test_rewrite_using_picks_the_newest_node_and_says_so(tmp_path: Path) -> None:
    anchor = prepare_anchor(make_checkout(tmp_path, "node99"), tmp_path / "ws")
    rewrite_using(anchor, ["node12", "node20", "node16"])
    assert "    using: node20\n" in (anchor.workspace / "action.yml").read_text()
    assert anchor.ran_as == "node20"
    assert "rewritten to node20" in anchor.using_note
    # The checkout itself is untouched.
    assert "using: node99" in (anchor.source / "action.yml").read_text()


def test_prepare_anchor_refuses_what_is_not_a_checkout(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"no action\.yml"):
        prepare_anchor(tmp_path, tmp_path / "ws")
    checkout = make_checkout(tmp_path, "node20")
    (checkout / "dist" / "index.js").unlink()
    with pytest.raises(BenchError, match="missing"):
        prepare_anchor(checkout, tmp_path / "ws")


def bench_context(tmp_path: Path) -> Context:
    python = resolve_python(None)
    ctx = Context(
        python=python,
        python_version="",
        work=tmp_path / "work",
        bin_dir=tmp_path / "bin",
        pythons=Pythons(Path("/nonexistent"), Path("/nonexistent")),
        runs=1,
        modes=MODES,
    )
    for mode in MODES:
        ctx.workspaces[mode.key] = Workspace(mode, tmp_path / f"ws-{mode.key}")
    return ctx


def test_variants_interleave_the_original_and_the_slow_tbot(tmp_path: Path) -> None:
    ctx = bench_context(tmp_path)
    keys = [v.key for v in ctx.variants()]
    assert "original/off" not in keys
    ctx.anchor = prepare_anchor(make_checkout(tmp_path, "node24"), tmp_path / "orig")
    variants = ctx.variants()
    keys = [v.key for v in variants]
    # The original runs next to this project's opted-out run in the reference mode.
    assert keys[keys.index("shipped/off") + 1] == "original/off"
    assert keys[-2:] == ["slow/off", "slow/healthy"]
    slow = [v for v in variants if v.tbot_sleep]
    assert [v.key for v in slow] == ["slow/off", "slow/healthy"]
    assert all(v.mode.key == "shipped" and v.tbot_sleep == 1.0 for v in slow)
    assert len(keys) == len(set(keys))


# A JavaScript action that does what the original does around tbot: `tbot version`,
# a config with an identity output, `tbot start -c`, then its outputs.
MINI_ORIGINAL = r"""
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");
const version = execFileSync("tbot", ["version"]).toString();
if (!/Teleport (?:Enterprise )?v(1[6-9]|[2-9]\d)\./.test(version)) process.exit(3);
const dir = fs.mkdtempSync(path.join(process.env.RUNNER_TEMP, "id-"));
const cfg = dir + ".yaml";
fs.writeFileSync(cfg, `outputs:\n  - type: identity\n    destination:\n      path: ${dir}\n`);
execFileSync("tbot", ["start", "-c", cfg], { stdio: "inherit" });
for (const [k, v] of [["identity-file", "identity"], ["ssh-config", "ssh_config"]]) {
  fs.appendFileSync(process.env.GITHUB_OUTPUT, `${k}=${path.join(dir, v)}\n`);
}
fs.appendFileSync(process.env.GITHUB_OUTPUT, `destination-dir=${dir}\n`);
"""


@pytest.mark.act
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_an_original_act_refuses_runs_rewritten_and_timed(tmp_path: Path) -> None:
    ctx = bench_context(tmp_path)
    ctx.work.mkdir()
    install_tbot(ctx.bin_dir)
    ctx.anchor = prepare_anchor(make_checkout(tmp_path, "node99", MINI_ORIGINAL), tmp_path / "o")
    variant = next(v for v in ctx.variants() if v.original)
    probe = tmp_path / "probe"
    sample = act_once(ctx, variant, "warmup", probe)
    assert ctx.anchor.ran_as != "node99"
    assert ctx.anchor.ran_as.startswith("node")
    # act timed the step, and the time inside tbot is a part of it.
    assert 0 < sample.tbot < sample.step
    assert sample.event_first is None
    check_probe(ctx, variant, read_probe(probe))
    assert os.path.basename(ctx.anchor.node).startswith("node")
    assert ctx.anchor.node_version.startswith("v")


def test_host_only_variables_are_dropped_and_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", "/etc/ssl/certs/ca-certificates.crt")
    assert drop_host_only_variables() == {
        "NODE_EXTRA_CA_CERTS": "/etc/ssl/certs/ca-certificates.crt"
    }
    assert "NODE_EXTRA_CA_CERTS" not in os.environ
    assert drop_host_only_variables() == {}
