"""A slim view of this checkout for act's ``--local-repository``.

act copies the folder a ``--local-repository`` names, whole and git-ignored
files included, into memory and out again for every step (main and post) that
uses it: with this checkout's .venv/ that is a few hundred MB and several
seconds per step. The view holds only what a release ships, as links into the
checkout (so it is always current and nothing is copied or rebuilt): the
runtime bundle _vendor/ is used as it is. act reads the action.yml files
itself and does not follow a link there, so those few are copied.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

# What the step needs at run time besides the action.yml files.
LINKED = ("src", "scripts", "requirements.txt", "_vendor")


class ViewError(Exception):
    """The checkout lacks something the action needs at run time."""


def make_view(
    checkout: Path, dest: Path, member_folders: Iterable[str], copied: Iterable[str] = ()
) -> Path:
    """Lay out ``dest``: copies of every action.yml (and of ``copied`` folders), links to the rest.

    ``copied``: small folders act runs as actions of their own (end-of-job/, a Node
    action), copied whole.
    """
    if not (checkout / "_vendor" / "BUNDLE").is_file():
        raise ViewError(
            f"{checkout}/_vendor/ has no bundle: run `python3 {checkout}/scripts/dev setup`"
        )
    dest.mkdir(parents=True, exist_ok=True)
    for folder in ("", *member_folders):
        source = checkout / folder / "action.yml"
        if not source.is_file():
            raise ViewError(f"{source} is missing: run `python3 scripts/gen_actions`")
        (dest / folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest / folder / "action.yml")
    for folder in copied:
        shutil.copytree(checkout / folder, dest / folder)
    for name in LINKED:
        os.symlink(checkout / name, dest / name)
    return dest
