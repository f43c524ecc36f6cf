"""`make protos`: Python code, the descriptor set Envoy transcodes with, the gateway config.

Everything here is derived from `protos/`; nothing generated is edited by hand.
"""

from __future__ import annotations

import importlib
import importlib.resources
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GEN_PY = ROOT / "gen" / "python"
GATEWAY_GEN = ROOT / "gateway" / "generated"
DESCRIPTOR_SET = GATEWAY_GEN / "tradesense.pb"

# google/rpc protos go into the descriptor set so convert_grpc_status can render
# google.rpc.Status details (BadRequest, ErrorInfo) as JSON.
GOOGLE_EXTRA = [
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
    "google/api/httpbody.proto",
]


def _include_dirs() -> list[Path]:
    grpc_tools_proto = Path(str(importlib.resources.files("grpc_tools") / "_proto"))
    from google.api import annotations_pb2

    # googleapis-common-protos ships the .proto sources beside the modules.
    site_packages = Path(annotations_pb2.__file__).resolve().parents[2]
    return [PROTOS, grpc_tools_proto, site_packages]


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))


def _protoc(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "grpc_tools.protoc", *[f"-I{d}" for d in _include_dirs()], *args]
    subprocess.run(cmd, check=True)


def generate() -> None:
    files = proto_files()
    shutil.rmtree(GEN_PY, ignore_errors=True)
    GEN_PY.mkdir(parents=True)
    GATEWAY_GEN.mkdir(parents=True, exist_ok=True)
    _protoc(
        [
            f"--python_out={GEN_PY}",
            f"--pyi_out={GEN_PY}",
            f"--grpc_python_out={GEN_PY}",
            *files,
        ]
    )
    # Generated modules import each other as `tradesense.x.v1`; make each level a package.
    for d in [p for p in GEN_PY.rglob("*") if p.is_dir()]:
        (d / "__init__.py").touch()
    _protoc(
        [
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={DESCRIPTOR_SET}",
            *files,
            *GOOGLE_EXTRA,
        ]
    )
    # The gateway config is rendered from the same protos. On a fresh clone gen/python did
    # not exist when this interpreter started, so site skipped its .pth entry: add it now.
    if str(GEN_PY) not in sys.path:
        sys.path.insert(0, str(GEN_PY))
    importlib.invalidate_caches()
    from gateway import openapi, render

    render.write_default()
    render.write_kubernetes()
    openapi.write()
    print(f"generated {len(files)} protos -> {GEN_PY.relative_to(ROOT)}, {DESCRIPTOR_SET.relative_to(ROOT)}")


if __name__ == "__main__":
    generate()  # --kubernetes is accepted for the gateway image: both configs are always written
