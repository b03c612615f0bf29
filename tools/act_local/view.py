"""Slim views of this checkout for act's ``--local-repository``.

act copies the folder a ``--local-repository`` names, whole and git-ignored
files included, into memory and out again for every step (main and post) that
uses it: with this checkout's .venv/ that is a few hundred MB and several
seconds per step. A view holds only what a release ships, as links into the
checkout (so it is always current and nothing is copied or rebuilt): the
runtime bundle _vendor/ is used as it is. act reads the action.yml files
itself and does not follow a link there, so those few are copied.

``make_view`` is ``teleport-actions/auth`` with its folders: the members, and
any other folder a workflow or a member reaches as ``teleport-actions/auth/<folder>``
(such as the daemon members' end-of-job/), copied whole.
``make_member_view`` is one member as an original's own repository
(``teleport-actions/auth-k8s``): its action.yml at the root.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from teleport_auth.family import MEMBERS

# What the step needs at run time besides the action.yml files.
LINKED = ("src", "scripts", "requirements.txt", "_vendor")
ACTION_FILES = ("action.yml", "action.yaml")
MEMBER_FOLDERS = frozenset(m.folder for m in MEMBERS if m.folder)
# Never linked into a view: build and cache leftovers of the checkout.
_SKIPPED = ("__pycache__", "node_modules")


class ViewError(Exception):
    """The checkout lacks something the action needs at run time."""


def _action_file(folder: Path) -> Path:
    for name in ACTION_FILES:
        if (folder / name).is_file():
            return folder / name
    raise ViewError(f"{folder / 'action.yml'} is missing: run `python3 scripts/gen_actions`")


def _check_bundle(checkout: Path) -> None:
    if not (checkout / "_vendor" / "BUNDLE").is_file():
        raise ViewError(
            f"{checkout}/_vendor/ has no bundle: run `python3 {checkout}/scripts/dev setup`"
        )


def _link_runtime(checkout: Path, dest: Path) -> None:
    for name in LINKED:
        os.symlink(checkout / name, dest / name)


def _lay_out_folder(source: Path, dest: Path, text: str | None = None) -> None:
    """``dest``: a copy of the folder's action file (or ``text``), links to its other files."""
    action = _action_file(source)
    dest.mkdir(parents=True, exist_ok=True)
    if text is None:
        shutil.copyfile(action, dest / action.name)
    else:
        (dest / action.name).write_text(text, encoding="utf-8")
    for entry in source.iterdir():
        target = dest / entry.name
        if entry.name in ACTION_FILES or entry.name in _SKIPPED or target.exists():
            continue
        os.symlink(entry, target)


def _copy_folder(source: Path, dest: Path) -> None:
    """A folder that is an action of its own (end-of-job/, a Node action): copied whole,
    as act runs its scripts from its own copy."""
    _action_file(source)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(*_SKIPPED))


def make_view(checkout: Path, dest: Path, folders: Iterable[str]) -> Path:
    """Lay out ``dest`` as ``teleport-actions/auth``: the root action and ``folders``."""
    _check_bundle(checkout)
    dest.mkdir(parents=True, exist_ok=True)
    _link_runtime(checkout, dest)
    root_action = _action_file(checkout)
    shutil.copyfile(root_action, dest / root_action.name)
    for folder in sorted(set(folders) - {""}, key=lambda f: (f.count("/"), f)):
        source = checkout / folder
        if not source.resolve().is_relative_to(checkout.resolve()):
            raise ViewError(f"teleport-actions/auth/{folder}: not a folder of {checkout}")
        if folder in MEMBER_FOLDERS:
            _lay_out_folder(source, dest / folder)
        else:
            _copy_folder(source, dest / folder)
    return dest


def make_member_view(checkout: Path, dest: Path, folder: str) -> Path:
    """Lay out ``dest`` as an original's repository: member ``folder``'s action at the root.

    The member's action.yml reaches the shared code one level up
    (``$GITHUB_ACTION_PATH/../src``); at the root that code is beside it.
    """
    _check_bundle(checkout)
    source = checkout / folder
    text = _action_file(source).read_text(encoding="utf-8")
    for parent in ("$GITHUB_ACTION_PATH/../", "${{ github.action_path }}/../"):
        text = text.replace(parent, parent.removesuffix("../"))
    dest.mkdir(parents=True, exist_ok=True)
    _link_runtime(checkout, dest)
    _lay_out_folder(source, dest, text)
    return dest
