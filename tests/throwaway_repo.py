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


# A pinned commit, as users pin the originals (any 40 hex digits: nothing is fetched).
PINNED_SHA = "8f2c1e4b9d0a7f3e6c5b4a392817d6e5f4c3b2a1"


def originals_workflow(proxy: str, listen_port: int, diag_port: int) -> str:
    """A workflow written for the originals, as real ones are: setup first, then
    ``auth@v2`` and ``auth-k8s@v2`` in a matrix (the first with a misspelt input),
    and ``application-tunnel`` pinned to a commit with ``curl`` through the tunnel."""
    return f"""\
name: originals
on: [push, workflow_dispatch]
permissions:
  id-token: write
  contents: read
env:
  TELEPORT_PROXY_ADDR: {proxy}
jobs:
  kube:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        cluster: [cluster-a, cluster-b]
    steps:
      - name: Install Teleport
        uses: teleport-actions/setup@v1
        with:
          version: 17.4.8
      - name: Authorize against Teleport
        id: auth
        uses: teleport-actions/auth@v2
        with:
          proxy: ${{{{ env.TELEPORT_PROXY_ADDR }}}}
          token: {TOKEN}
          anonymous_telemetry: true
      - name: Fetch kubectl credentials
        id: kube
        uses: teleport-actions/auth-k8s@v2
        with:
          proxy: ${{{{ env.TELEPORT_PROXY_ADDR }}}}
          token: {TOKEN}
          kubernetes-cluster: ${{{{ matrix.cluster }}}}
          anonymous-telemetry: true
      - name: Use them
        env:
          CLUSTER: ${{{{ matrix.cluster }}}}
        run: |
          tbot version
          dir=$(dirname "$KUBECONFIG")
          openssl verify -CAfile "$dir/teleport-host-ca.crt" "$dir/tlscert"
          ssh-keygen -L -f "$dir/key-cert.pub" | sed -n 's/^ *Type: /ssh certificate: /p'
          if command -v kubectl >/dev/null; then
            kubectl get namespaces --request-timeout=10s 2>&1 | tail -n 1 \\
              | sed "s/^/kubectl $CLUSTER: /" || true
          fi
  tunnel:
    runs-on: ubuntu-latest
    steps:
      - name: Install Teleport
        uses: teleport-actions/setup@v1
        with:
          version: 18.6.4
      - name: Start the application tunnel
        id: tunnel
        uses: teleport-actions/application-tunnel@{PINNED_SHA}
        with:
          proxy: {proxy}
          token: {TOKEN}
          app: grafana
          listen: tcp://127.0.0.1:{listen_port}
          diag-port: "{diag_port}"
          anonymous-telemetry: true
      - name: Through the tunnel
        env:
          PORT: ${{{{ steps.tunnel.outputs.application-tunnel-port }}}}
        run: curl -sS --max-time 20 "http://127.0.0.1:$PORT/status"
"""


def reusable_workflows(proxy: str) -> dict[str, str]:
    """A caller whose `login` job calls a reusable workflow that logs in through a
    local composite action (granted `id-token: write` by the caller), a job that
    forgot the permission and one with an empty token; and a workflow not selected."""
    auth = f"proxy: {proxy}\n          token: {TOKEN}"
    return {
        ".github/workflows/caller.yml": f"""\
name: caller
on: push
permissions:
  contents: read
jobs:
  login:
    permissions:
      contents: read
      id-token: write
    uses: ./.github/workflows/login.yml
  forgot:
    runs-on: ubuntu-latest
    steps:
      - name: Log in without the permission
        uses: teleport-actions/auth@v2
        with:
          {auth}
  refuse:
    runs-on: [self-hosted, linux]
    permissions: write-all
    steps:
      - uses: "teleport-actions/auth@main"
        with:
          proxy: {proxy}
          token: ""
""",
        ".github/workflows/login.yml": f"""\
name: login
on:
  workflow_call:
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: teleport-actions/setup@v1
        with:
          version: auto
          proxy: {proxy}
      - uses: ./.github/actions/teleport-login
      - run: test -s "$TELEPORT_IDENTITY_FILE" && echo "the called workflow logged in"
""",
        ".github/actions/teleport-login/action.yml": f"""\
name: Teleport login
description: The team's own login step.
runs:
  using: composite
  steps:
    - uses: teleport-actions/auth@v2.0.1
      with:
        {auth.replace("          ", "        ")}
""",
        ".github/workflows/other.yml": """\
name: other
on: push
jobs:
  unrelated:
    runs-on: ubuntu-latest
    steps:
      - uses: teleport-actions/auth@not-selected
""",
    }
