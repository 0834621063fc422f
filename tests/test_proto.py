"""The project's own protobuf schema (proto/) and the code generated from it
(src/session_bridge/proto/) agree: regenerate and compare byte for byte.

To regenerate after changing a .proto file:

    .venv/bin/python -m grpc_tools.protoc -Iproto --python_out=src/session_bridge/proto \\
        --pyi_out=src/session_bridge/proto proto/session_bridge/v1/records.proto
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PROTO_ROOT = REPO / "proto"
GENERATED = REPO / "src" / "session_bridge" / "proto"


def test_generated_code_is_current(tmp_path: Path) -> None:
    sources = sorted(p.relative_to(PROTO_ROOT) for p in PROTO_ROOT.rglob("*.proto"))
    assert sources, "no .proto files under proto/"
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}",
         f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", *map(str, sources)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_pb2.py*"))
    committed = sorted(p.relative_to(GENERATED) for p in GENERATED.rglob("*_pb2.py*"))
    assert fresh == committed, "generated files differ from the committed ones: regenerate"
    for name in fresh:
        assert (tmp_path / name).read_bytes() == (GENERATED / name).read_bytes(), (
            f"{name} is stale: regenerate (see this test's docstring)"
        )
