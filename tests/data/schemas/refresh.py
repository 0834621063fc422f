"""Refresh the vendored schemas of tests/test_deploy.py from two PyPI wheels.

    pip download --no-deps -d WHEELS check-jsonschema==0.39.0 kubernetes-validate==1.37.0
    python tests/data/schemas/refresh.py WHEELS

- `compose-spec.json` and `LICENSE.compose-spec` come unchanged from check-jsonschema's
  vendored copy of the Compose Specification's `schema/compose-spec.json`.
- `kubernetes/<version>/` takes from kubernetes-validate the "local-strict" schema of each
  kind in KINDS unchanged, and its `_definitions.json` pruned to the definitions those
  kinds reach (each kept unchanged, at the same place, so every `$ref` resolves as in the
  original); the pruned file says so in its `$comment`.

README.md beside this script says what the files are and where they come from; update
the versions there when you change them here.
"""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
# The oldest Kubernetes the manifests are for: native sidecar containers (an init
# container with restartPolicy: Always) are generally available from 1.33.
K8S_VERSION = "v1.33.0"
# One schema file per kind the manifests under deploy/ use.
KINDS = (
    "configmap-v1.json",
    "deployment-apps-v1.json",
    "persistentvolumeclaim-v1.json",
    "service-v1.json",
)
DEFINITIONS = "_definitions.json"
# a kind's file names a definition by the document's path, a definition names another
# within the document
REF_PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/")
COMPOSE = "check_jsonschema/builtin_schemas/vendor/compose-spec.json"
COMPOSE_LICENCE = "check_jsonschema/builtin_schemas/vendor/licenses/LICENSE.compose-spec"


def _wheel(wheels: Path, name: str) -> zipfile.ZipFile:
    (path,) = sorted(wheels.glob(f"{name}-*.whl"))
    return zipfile.ZipFile(path)


def references(node: Any) -> set[str]:
    """The definitions a schema node names in its `$ref`s."""
    if isinstance(node, dict):
        found: set[str] = set()
        for value in node.values():
            found |= references(value)
        ref = node.get("$ref")
        for prefix in REF_PREFIXES:
            if isinstance(ref, str) and ref.startswith(prefix):
                found.add(ref.removeprefix(prefix))
        return found
    if isinstance(node, list):
        return set().union(*(references(v) for v in node)) if node else set()
    return set()


def closure(roots: set[str], definitions: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = sorted(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += sorted(references(definitions[name]) - seen)
    return seen


def main(wheels: Path) -> None:
    with _wheel(wheels, "check_jsonschema") as wheel:
        (HERE / "compose-spec.json").write_bytes(wheel.read(COMPOSE))
        (HERE / "LICENSE.compose-spec").write_bytes(wheel.read(COMPOSE_LICENCE))
    source = f"kubernetes_validate/kubernetes-json-schema/{K8S_VERSION}-local-strict/"
    target = HERE / "kubernetes" / K8S_VERSION
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with _wheel(wheels, "kubernetes_validate") as wheel:
        roots: set[str] = set()
        for kind in KINDS:
            data = wheel.read(source + kind)
            (target / kind).write_bytes(data)
            roots |= references(json.loads(data))
        document = json.loads(wheel.read(source + DEFINITIONS))
        licence = next(n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE"))
        (HERE / "LICENSE.kubernetes-validate").write_bytes(wheel.read(licence))
    kept = closure(roots, document["$defs"])
    pruned = {
        "$comment": (
            f"Pruned by tests/data/schemas/refresh.py to the {len(kept)} definitions that "
            f"{', '.join(KINDS)} reach; each is unchanged."
        ),
        **{k: v for k, v in document.items() if k != "$defs"},
        "$defs": {name: document["$defs"][name] for name in sorted(kept)},
    }
    (target / DEFINITIONS).write_text(json.dumps(pruned, indent=1, sort_keys=False) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
