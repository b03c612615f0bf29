"""What the action ships: files and bytes, with and without bytecode, and as .tar.gz."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steptime.harness import REPO, SHIPPED


def is_pyc(path: Path) -> bool:
    return path.suffix == ".pyc" or "__pycache__" in path.parts


def shipped_files() -> list[Path]:
    files: list[Path] = []
    for name in SHIPPED:
        path = REPO / str(name)
        files += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return files


def targz_size(files: Sequence[Path]) -> int:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for path in files:
            tar.add(path, arcname=str(path.relative_to(REPO)), recursive=False)
    return len(buffer.getvalue())


def ship_size() -> dict[str, Any]:
    files = shipped_files()
    parts: dict[str, dict[str, int]] = {}
    packages: dict[str, dict[str, int]] = {}
    for path in files:
        rel = path.relative_to(REPO)
        part = rel.parts[0] + ("/" if len(rel.parts) > 1 else "")
        kind = "pyc" if is_pyc(rel) else "src"
        size = path.stat().st_size
        entry = parts.setdefault(
            part, {"src_files": 0, "src_bytes": 0, "pyc_files": 0, "pyc_bytes": 0}
        )
        entry[f"{kind}_files"] += 1
        entry[f"{kind}_bytes"] += size
        if rel.parts[0] == "_vendor" and len(rel.parts) > 2:
            top = rel.parts[1]
            name = "*.dist-info (metadata)" if top.endswith(".dist-info") else top
            package = packages.setdefault(name, {"src_bytes": 0, "pyc_bytes": 0})
            package[f"{kind}_bytes"] += size
    without_pycs = [p for p in files if not is_pyc(p.relative_to(REPO))]
    return {
        "parts": parts,
        "packages": packages,
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "files_without_pycs": len(without_pycs),
        "bytes_without_pycs": sum(p.stat().st_size for p in without_pycs),
        "targz_bytes": targz_size(files),
        "targz_bytes_without_pycs": targz_size(without_pycs),
    }
