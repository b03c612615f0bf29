"""The documents point at things that exist: SECURITY.md's tests, README's members.

Every test the documents cite (tests/citations.py) is collected and not marked
to skip; under CI a cited test that skips at run time fails (conftest).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys

import pytest

from citations import citations
from conftest import REPO
from teleport_auth.family import MEMBERS

SECURITY = (REPO / "SECURITY.md").read_text()
README = (REPO / "README.md").read_text()


def _functions(path: str) -> set[str]:
    tree = ast.parse((REPO / "tests" / path).read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


REFERENCES = sorted(set(re.findall(r"`(test_\w+\.py|conftest\.py)::(\w+)`", SECURITY)))
FILES = sorted(set(re.findall(r"`(test_\w+\.py)`", SECURITY)))


def test_security_md_names_tests() -> None:
    assert len(REFERENCES) >= 20


@pytest.mark.parametrize(("path", "name"), REFERENCES)
def test_every_test_security_md_names_exists(path: str, name: str) -> None:
    assert name in _functions(path), f"SECURITY.md names {path}::{name}, which does not exist"


@pytest.mark.parametrize("path", FILES)
def test_every_test_file_security_md_names_exists(path: str) -> None:
    assert (REPO / "tests" / path).is_file()


@pytest.mark.parametrize("key", [m.key for m in MEMBERS])
def test_readme_lists_every_member(key: str) -> None:
    [member] = [m for m in MEMBERS if m.key == key]
    assert f"`{member.uses}@v1`" in README
    assert f"`{member.original}`" in README


# Documents a reader of this repository cannot open (the team's notes outside it).
_OUTSIDE = re.compile("FAC" + r"TS(\.md)?\b")  # spelt in two so this line is no match
_TEXT_SUFFIXES = {".py", ".md", ".yml", ".yaml", ".toml", ".sh", ".js", ".in", ""}


def test_no_comment_points_outside_the_repository() -> None:
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in tracked:
        path = REPO / name
        if path.suffix not in _TEXT_SUFFIXES or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        found += [
            f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1) if _OUTSIDE.search(line)
        ]
    assert found == [], "point at docs/compatibility.md instead"


DOCUMENTS = [
    "README.md",
    "SECURITY.md",
    "CHANGELOG.md",
    "ARCHITECTURE.md",
    *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")),
]
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: str) -> set[str]:
    text = (REPO / path).read_text()
    text = re.sub(r"(?ms)^```.*?^```", "", text)  # headings inside code blocks are not
    return {_slug(m) for m in re.findall(r"(?m)^#{1,6}\s+(.*)$", text)}


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_relative_link_resolves(document: str) -> None:
    text = re.sub(r"(?ms)^```.*?^```", "", (REPO / document).read_text())
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        resolved = (REPO / document).parent / path if path else REPO / document
        relative = resolved.resolve().relative_to(REPO.resolve()).as_posix()
        missing_anchor = anchor and resolved.suffix == ".md" and anchor not in _anchors(relative)
        if not resolved.exists() or missing_anchor:
            broken.append(target)
    assert broken == [], f"{document} links to what does not exist"


def test_readme_stays_short() -> None:
    # README is for a user's first read; reference material lives in docs/.
    assert len(README.splitlines()) <= 430


ARCHITECTURE = (REPO / "ARCHITECTURE.md").read_text()
GUARDS = sorted(set(re.findall(r"`tests/(test_\w+\.py|conftest\.py)::(\w+)`", ARCHITECTURE)))


def test_architecture_names_a_guard_per_invariant() -> None:
    assert len(GUARDS) >= 10


@pytest.mark.parametrize(("path", "name"), GUARDS)
def test_every_test_architecture_md_names_exists(path: str, name: str) -> None:
    assert name in _functions(path), f"ARCHITECTURE.md names {path}::{name}, which does not exist"


# Collects the node ids given, as pytest itself would, and says for each test
# collected whether a skip or skipif mark would skip it.
COLLECT = """
import json, sys
import pytest
from _pytest.skipping import evaluate_skip_marks

class Probe:
    found = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        for item in items:
            self.found[item.nodeid] = evaluate_skip_marks(item) is not None

code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *sys.argv[1:]], [Probe()])
print("COLLECTED", json.dumps(Probe.found))
sys.exit(code)
"""


def test_every_cited_test_is_collected_and_not_marked_to_skip() -> None:
    cited = sorted((file, test) for file, test in citations() if file != "conftest.py")
    assert len(cited) >= 20
    node_ids = [f"tests/{file}" + (f"::{test}" if test else "") for file, test in cited]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join(str(REPO / p) for p in ("tests", "_vendor", "src", "tools"))
    done = subprocess.run(
        [sys.executable, "-c", COLLECT, *node_ids],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    output = done.stdout + done.stderr
    # A cited test that does not exist: pytest says "not found" and exits 4.
    assert done.returncode == 0, output[-4000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("COLLECTED "))
    collected: dict[str, bool] = json.loads(line.removeprefix("COLLECTED "))
    for node_id in node_ids:
        mine = {k: v for k, v in collected.items() if k == node_id or k.startswith(node_id + "[")}
        if "::" not in node_id:  # a whole file
            mine = {k: v for k, v in collected.items() if k.startswith(node_id + "::")}
        assert mine, f"{node_id} is cited but collects no test"
        assert not [k for k, skips in mine.items() if skips], f"{node_id}: marked to skip"
