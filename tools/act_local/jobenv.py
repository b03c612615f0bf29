"""What an act run's jobs find besides the repository: OIDC variables where GitHub
would give a token, and the stand-in for ``teleport-actions/setup``."""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Iterable
from pathlib import Path

from act_local.workflows import SETUP_STANDIN

# act has no OIDC service: tbot's GitHub join needs only that these are set to
# get past its first check (the stand-in checks nothing more).
OIDC_DUMMIES = {
    "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:9/oidc-not-available-under-act",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "act",
}

_BASH_ENV = """\
# Written by python3 scripts/dev act for one run. GitHub gives a job an OIDC
# token only when its permissions grant id-token: write; act gives none. Every
# bash step sources this file (BASH_ENV): the jobs listed in {jobs} (workflow
# name, a tab, job id) find the variables, as they would on GitHub.
__act_local_job="${{GITHUB_WORKFLOW-}}	${{GITHUB_JOB-}}"
while IFS= read -r __act_local_line || [ -n "$__act_local_line" ]; do
  if [ "$__act_local_line" = "$__act_local_job" ]; then
    export {exports}
  fi
done < {jobs}
unset __act_local_job __act_local_line
{user}
"""


def oidc_bash_env(folder: Path, jobs: Iterable[tuple[str, str]], user_bash_env: str) -> Path:
    """The BASH_ENV file that sets the OIDC variables in ``jobs`` only; returns its path.

    ``user_bash_env``, the caller's own BASH_ENV if any, is sourced after it.
    """
    listed = folder / "oidc-jobs"
    lines = [f"{workflow}\t{job}\n" for workflow, job in jobs if "\n" not in workflow + job]
    listed.write_text("".join(lines), encoding="utf-8")
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in OIDC_DUMMIES.items())
    user = f". {shlex.quote(user_bash_env)}" if user_bash_env else ""
    script = folder / "bash-env.sh"
    script.write_text(
        _BASH_ENV.format(jobs=shlex.quote(str(listed)), exports=exports, user=user),
        encoding="utf-8",
    )
    return script


def setup_standin(dest: Path, bin_dir: Path, tbot: str, *, standin: bool) -> Path:
    """A copy of the setup stand-in action, told which tbot this run uses."""
    shutil.copytree(SETUP_STANDIN, dest, ignore=shutil.ignore_patterns("__pycache__"))
    run = {"bin": str(bin_dir), "tbot": tbot, "standin": standin}
    (dest / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return dest
