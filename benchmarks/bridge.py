"""The bridge under test: its command line, the config snippets the benchmarks give it
(PostgreSQL in a fresh schema, an `ingestion` exporter pointed at the sink), and the
schemas dropped afterwards."""

from __future__ import annotations

import sys
from pathlib import Path

from processes import HOST

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def default_bridge_cmd() -> list[str]:
    """`session-bridge` next to this python, else the module run by this python."""
    exe = Path(sys.executable).parent / "session-bridge"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "session_bridge.cli"]


def run_command(
    bridge_cmd: list[str],
    data_dir: Path,
    grpc_port: int,
    http_port: int,
    config: Path | None = None,
    workers: int | None = None,
) -> list[str]:
    """`session-bridge run` on 127.0.0.1's two ports with a data dir of its own."""
    cmd = [*bridge_cmd, "run"]
    if config is not None:
        cmd += ["--config", str(config)]
    cmd += ["--data-dir", str(data_dir), "--grpc", f"{HOST}:{grpc_port}"]
    cmd += ["--http", f"{HOST}:{http_port}"]
    if workers:
        cmd += ["--workers", str(workers)]
    return cmd


def postgres_yaml(dsn: str, schema: str) -> str:
    """Storage on PostgreSQL at `dsn`, in `schema`."""
    quoted = dsn.replace("'", "''")
    return (
        f"storage:\n  backend: postgres\n  postgres:\n    dsn: '{quoted}'\n    schema: {schema}\n"
    )


def ingestion_yaml(sink_port: int, *, keep_file: bool = False, retry_max_interval: str = "") -> str:
    """An `ingestion` exporter sending to the sink (and the `file` exporter beside it if
    `keep_file`)."""
    text = (
        "exporters:\n"
        "  ingestion:\n"
        f"    base_url: http://{HOST}:{sink_port}\n"
        "    public_key: pk-bench\n"
        "    secret_key: sk-bench-0123456789\n"
    )
    if retry_max_interval:
        text += f"    retry: {{max_interval: {retry_max_interval}}}\n"
    return text + ("  file: {}\n" if keep_file else "")


def drop_schemas(dsn: str, name: str) -> None:
    """Drop schema `name`, or every schema starting with `name` if it ends in `_`."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        pattern = name.replace("_", r"\_") + ("%" if name.endswith("_") else "")
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (pattern,)
        ).fetchall()
        for (schema,) in rows:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
