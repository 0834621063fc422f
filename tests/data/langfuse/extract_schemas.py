"""Extract the ingestion schemas from Langfuse's OpenAPI document.

`ingestion-schemas.yml` beside this script was made with

    python tests/data/langfuse/extract_schemas.py openapi.yml > tests/data/langfuse/ingestion-schemas.yml

where `openapi.yml` is `web/public/generated/api/openapi.yml` of github.com/langfuse/langfuse
(commit a7fa476e7537254b02efca84de6a67cc528b0e89). It keeps `components.schemas` entries
`IngestionEvent` and `IngestionResponse` and every schema they reference, unchanged and
at the same place (`#/components/schemas/<name>`), so the `$ref`s resolve as in the
original; the rest of the document (paths, other schemas) is left out.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOTS = ("IngestionEvent", "IngestionResponse")
PREFIX = "#/components/schemas/"
HEADER = """\
# Langfuse's ingestion schemas (IngestionEvent, IngestionResponse and what they reference),
# extracted by extract_schemas.py from web/public/generated/api/openapi.yml of
# github.com/langfuse/langfuse, commit a7fa476e7537254b02efca84de6a67cc528b0e89.
# MIT licence: see LICENSE beside this file.
"""


def references(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = set().union(*(references(v) for v in node.values())) if node else set()
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(PREFIX):
            found.add(ref.removeprefix(PREFIX))
        return found
    if isinstance(node, list):
        return set().union(*(references(v) for v in node)) if node else set()
    return set()


def extract(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document["components"]["schemas"]
    wanted: set[str] = set()
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(references(schemas[name]) - wanted)
    kept = {name: schema for name, schema in schemas.items() if name in wanted}
    return {"openapi": document["openapi"], "components": {"schemas": kept}}


def main() -> None:
    document = yaml.load(Path(sys.argv[1]).read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    sys.stdout.write(HEADER)
    yaml.safe_dump(extract(document), sys.stdout, sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    main()
