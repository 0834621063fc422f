"""`session-bridge run | migrate | check-config | dlq`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from session_bridge import __version__, logs, malloc
from session_bridge.config import BridgeConfig, ConfigError, load
from session_bridge.logs import LOG_FORMATS, LOG_LEVELS
from session_bridge.receivers.config import MAX_WORKERS, split_endpoint
from session_bridge.telemetry import share_metrics_between_processes

if TYPE_CHECKING:
    from session_bridge.server import Bridge, Endpoints

log = logging.getLogger("session_bridge")


def _endpoint(value: str) -> str:
    try:
        split_endpoint(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="session-bridge", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the bridge")
    run.add_argument("--config", type=Path, help="YAML configuration file (default: built-in)")
    run.add_argument("--data-dir", help="where the SQLite database lives")
    run.add_argument("--grpc", type=_endpoint, metavar="HOST:PORT", help="OTLP/gRPC listen address")
    run.add_argument("--http", type=_endpoint, metavar="HOST:PORT", help="OTLP/HTTP + API address")
    run.add_argument("--log-format", choices=LOG_FORMATS)
    run.add_argument("--log-level", choices=LOG_LEVELS)
    run.add_argument(
        "--workers",
        type=int,
        help=f"map worker processes that prepare the requests (1-{MAX_WORKERS})",
    )

    upgrade = sub.add_parser("migrate", help="apply the store's pending schema migrations")
    upgrade.add_argument("--config", type=Path, help="YAML configuration file (default: built-in)")

    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", type=Path)

    from session_bridge import dlq

    dlq.add_commands(sub)
    return parser


def _apply_flags(config: BridgeConfig, args: argparse.Namespace) -> None:
    if args.data_dir:
        config.storage.data_dir = args.data_dir
    if args.grpc:
        config.receivers.otlp.protocols.grpc.endpoint = args.grpc
    if args.http:
        config.receivers.otlp.protocols.http.endpoint = args.http
    if args.log_format:
        config.log.format = args.log_format
    if args.log_level:
        config.log.level = args.log_level
    if args.workers:
        config.receivers.otlp.workers = max(1, min(MAX_WORKERS, args.workers))


def _announce(
    endpoints: Endpoints,
    storage: str,
    enrich: list[str],
    data_dir: Path,
    map_workers: int,
    exports: list[str] | None = None,
    open_to_network: list[str] | None = None,
) -> None:
    exposed = ", ".join(open_to_network or [])
    warning = [f"  WARNING       no API keys, and listening beyond this machine: {exposed}"]
    lines = [
        f"otel-session-bridge {__version__} is running"
        + (f" ({map_workers} map worker{'s' if map_workers > 1 else ''})" if map_workers else ""),
        f"  OTLP/gRPC     {endpoints.grpc or 'disabled'}"
        + (f" ({endpoints.grpc_tls})" if endpoints.grpc_tls else ""),
        f"  OTLP/HTTP     {endpoints.http}/v1/traces",
        f"  Sessions API  {endpoints.http}/api/v1/sessions",
        f"  All APIs      {endpoints.http}/openapi.json",
        f"  Sessions page {endpoints.http}/",
        f"  Data          {storage}",
        *(f"  Enrich        {line}" for line in enrich),
        *(f"  Export        {line}" for line in exports or ["none (no exporters configured)"]),
        f"  Point an SDK at it:  {endpoints.otlp_http_env}",
        f"                       {endpoints.otlp_protocol_env}",
        *(warning if exposed else []),
    ]
    print("\n".join(lines), flush=True)
    log.info(
        "bridge started",
        extra={
            "grpc": endpoints.grpc,
            "http": endpoints.http,
            "data_dir": str(data_dir),
            "storage": storage,
            "map_workers": map_workers,
        },
    )


async def _serve(bridge: Bridge) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        endpoints = await bridge.start()
    except BaseException:
        await bridge.stop()
        raise
    malloc.freeze_startup_objects()
    exports = bridge.exports.describe() if bridge.exports else None
    _announce(
        endpoints,
        bridge.storage_description,
        bridge.enrich_description,
        bridge.data_dir,
        bridge.processes.map_workers,
        exports,
        bridge.open_to_network,
    )
    await stop.wait()
    log.info("shutting down")
    await bridge.stop()
    log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        try:
            load(args.file)
        except ConfigError as exc:
            print(f"{args.file}: {len(exc.problems)} problem(s)", file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        print(f"{args.file}: ok")
        return 0

    try:
        config = load(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.command == "dlq":
        from session_bridge import dlq

        return dlq.run(args, config)
    if args.command == "migrate":
        from session_bridge.store.factory import migrate

        try:
            print(migrate(config.storage))
        except (OSError, RuntimeError) as exc:
            print(f"cannot migrate: {exc}", file=sys.stderr)
            return 1
        return 0
    _apply_flags(config, args)
    logs.configure(config.log.format, config.log.level)
    malloc.configure()
    try:
        if config.receivers.otlp.workers > 1:
            share_metrics_between_processes(config.storage.data_path / ".metrics")
        from session_bridge.receivers.connections import raise_open_file_limit
        from session_bridge.server import Bridge

        raise_open_file_limit()  # every connection holds a file descriptor

        asyncio.run(_serve(Bridge(config)))
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
