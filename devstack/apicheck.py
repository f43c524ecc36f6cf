"""`buf lint` and `buf breaking` on the protos, offline (`make test` runs it first).

buf (the buf-bin wheel) reads `buf.yaml`: our module `protos/` and, beside it, google/api's
annotations copied here from the googleapis-common-protos wheel into `gen/buf-deps/` (the
Buf Schema Registry is not reachable from CI). Breaking changes are checked against the last
release tag, or — until there is one — the previous commit: its `protos/` exported by
`git archive` into a workspace of its own with the same configuration.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

import google.api

from devstack import procs

ROOT = Path(__file__).resolve().parent.parent
DEPS = ("annotations.proto", "http.proto", "httpbody.proto")


def buf() -> str:
    return procs.tool("buf", "buf-bin")


def copy_deps(workspace: Path) -> None:
    src = Path(next(iter(google.api.__path__)))
    dst = workspace / "gen" / "buf-deps" / "google" / "api"
    dst.mkdir(parents=True, exist_ok=True)
    for name in DEPS:
        shutil.copyfile(src / name, dst / name)


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True)


def baseline() -> tuple[str, str] | None:
    """(what, ref) to check against: the last release tag, else the previous commit."""
    tag = _git("describe", "--tags", "--abbrev=0").stdout.decode().strip()
    if tag:
        return f"release {tag}", tag
    if _git("rev-parse", "--verify", "--quiet", "HEAD~1").returncode == 0:
        return "the previous commit", "HEAD~1"
    return None


def main() -> int:
    copy_deps(ROOT)
    lint = subprocess.run([buf(), "lint"], cwd=ROOT)
    if lint.returncode != 0:
        print("buf lint: the protos break the rules in buf.yaml (above)", file=sys.stderr)
        return lint.returncode
    base = baseline()
    if base is None:
        print("buf breaking: no earlier commit to compare with (a shallow clone?)")
        return 0
    what, ref = base
    archive = _git("archive", "--format=tar", ref, "protos")
    if archive.returncode != 0:
        print(f"buf breaking: {ref} has no protos/ to compare with")
        return 0
    with tempfile.TemporaryDirectory() as d:
        old = Path(d)
        with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
            tar.extractall(old, filter="data")
        shutil.copyfile(ROOT / "buf.yaml", old / "buf.yaml")
        copy_deps(old)
        breaking = subprocess.run([buf(), "breaking", ".", "--against", str(old)], cwd=ROOT)
    if breaking.returncode != 0:
        print(f"buf breaking: the API breaks compatibility with {what} ({ref}), above", file=sys.stderr)
        return breaking.returncode
    print(f"buf lint and buf breaking (against {what}) passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
