"""A throwaway repository of a user of this action, for the local-run tests.

Its workflow uses the action as a user's does, by name and ref
(``teleport-actions/auth@v1``, ``teleport-actions/auth/k8s@v1``), never
``uses: ./``: the runs under test must map those names to this checkout.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

TOKEN = "throwaway-join-token"
CLUSTER = "throwaway-cluster"

CI_WORKFLOW = f"""\
name: ci
on: [push, workflow_dispatch]
permissions:
  id-token: write
  contents: read
jobs:
  deploy:
    runs-on: ubuntu-latest
    timeout-minutes: 10
    steps:
      - name: Log in to Teleport
        id: auth
        uses: teleport-actions/auth@v1
        with:
          proxy: tele.example.com:443
          token: {TOKEN}
          anonymous-telemetry: true
      - name: Kubernetes credentials
        id: kube
        uses: teleport-actions/auth/k8s@v1
        with:
          proxy: tele.example.com:443
          token: {TOKEN}
          kubernetes-cluster: {CLUSTER}
          anonymous-telemetry: true
      - name: Use them
        run: |
          test -s "$TELEPORT_IDENTITY_FILE"
          echo "identity file read: $TELEPORT_IDENTITY_FILE"
          echo "kube context: $(sed -n 's/^current-context: //p' "$KUBECONFIG")"
"""


def make_repo(dest: Path, workflows: dict[str, str] | None = None) -> Path:
    """A git repository with one commit holding ``workflows`` (path: text)."""
    files = {".github/workflows/ci.yml": CI_WORKFLOW} if workflows is None else workflows
    for name, text in files.items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git = ["git", "-C", str(dest), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "-q"], check=True, timeout=60)
    subprocess.run([*git, "add", "-A"], check=True, timeout=60)
    subprocess.run([*git, "commit", "-q", "--no-gpg-sign", "-m", "ci"], check=True, timeout=60)
    return dest
