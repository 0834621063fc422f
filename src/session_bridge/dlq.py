"""`session-bridge dlq list | replay | purge`: the dead-letter store, by hand.

A dead letter is a span an exporter gave up on (the endpoint refused it for good, or
retries ran out), kept as a `session_bridge.v1.DeadLetter` with the server's message.
`replay` sends dead letters again through their exporter as configured now (after the
endpoint or the configuration was fixed): delivered ones leave the store, the others
stay with the new answer. It works whether or not the bridge is running.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from session_bridge.config import BridgeConfig
from session_bridge.export.base import Exporter, Failure, pack
from session_bridge.export.config import create_exporter
from session_bridge.export.records import from_proto
from session_bridge.store.export_log import ExportLog, StoredDeadLetter
from session_bridge.store.factory import backend, open_export_log
from session_bridge.timefmt import iso_from_ns

PAGE = 500


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = sub.add_parser("dlq", help="inspect, replay or purge the exporters' dead letters")
    actions = dlq.add_subparsers(dest="action", required=True)
    for name, text in (
        ("list", "list dead letters, oldest first"),
        ("replay", "send dead letters again through their exporter; delivered ones are removed"),
        ("purge", "delete dead letters"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument(
            "--config", type=Path, help="YAML configuration file (default: built-in)"
        )
        action.add_argument("--data-dir", help="where the SQLite database lives")
        action.add_argument("--exporter", help="only this exporter's dead letters")
        action.add_argument("--id", type=int, action="append", dest="ids", help="only this one")
        if name == "list":
            action.add_argument("--limit", type=int, default=100)
            action.add_argument("--json", action="store_true", help="one JSON object per line")
        if name == "purge":
            action.add_argument("--all", action="store_true", help="purge every dead letter")


def run(args: argparse.Namespace, config: BridgeConfig, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if args.data_dir:
        config.storage.data_dir = args.data_dir
    if not backend(config.storage).has_data(config.storage):
        print(
            f"no bridge data at {backend(config.storage).describe(config.storage)}", file=sys.stderr
        )
        return 1
    export_log = open_export_log(config.storage)
    try:
        if args.action == "list":
            return _list(export_log, args, out)
        if args.action == "replay":
            return _replay(export_log, args, config, out)
        if not (args.all or args.ids or args.exporter):
            print("purge: name --exporter, --id or --all", file=sys.stderr)
            return 2
        count = export_log.purge_dead_letters(args.exporter, args.ids)
        print(f"purged {count} dead letter(s)", file=out)
        return 0
    finally:
        export_log.close()


def _list(export_log: ExportLog, args: argparse.Namespace, out: TextIO) -> int:
    letters = export_log.dead_letters(args.exporter, args.ids, args.limit)
    for stored in letters:
        letter, record = stored.letter, stored.letter.record
        row = {
            "id": stored.id,
            "exporter": letter.exporter,
            "failed_at": iso_from_ns(letter.failed_time_unix_nano),
            "status": letter.status,
            "attempts": letter.attempts,
            "trace_id": record.trace_id.hex(),
            "span_id": record.span_id.hex(),
            "name": record.name,
            "session_id": record.session_id if record.HasField("session_id") else None,
            "message": letter.message,
        }
        if args.json:
            print(json.dumps(row), file=out)
        else:
            print(
                f"{row['id']:>6}  {row['exporter']}  {row['failed_at']}  {row['status']:>3}"
                f"  x{row['attempts']}  {row['trace_id']}/{row['span_id']}  {row['name']!r}"
                f"  {row['message']}",
                file=out,
            )
    total = export_log.count_dead_letters(args.exporter)
    if not args.json:
        print(f"{len(letters)} shown, {total} in the dead-letter store", file=out)
    return 0


@dataclass(slots=True)
class ReplayCount:
    delivered: int = 0
    failed: int = 0
    skipped: int = 0


def _replay(
    export_log: ExportLog, args: argparse.Namespace, config: BridgeConfig, out: TextIO
) -> int:
    data_dir = config.storage.data_path
    configured = {c.label: c for c in config.exporters}
    exporters: dict[str, Exporter] = {}
    count = ReplayCount()
    after = 0
    try:
        while True:
            page = export_log.dead_letters(args.exporter, args.ids, PAGE, after)
            if not page:
                break
            after = page[-1].id
            for name in dict.fromkeys(s.letter.exporter for s in page):
                letters = [s for s in page if s.letter.exporter == name]
                if name not in configured:
                    count.skipped += len(letters)
                    continue
                if name not in exporters:
                    exporters[name] = create_exporter(configured[name], data_dir)
                _replay_some(export_log, exporters[name], letters, count)
    finally:
        for exporter in exporters.values():
            exporter.close()
    print(
        f"replayed: {count.delivered} delivered, {count.failed} failed again"
        + (f", {count.skipped} skipped (exporter not configured)" if count.skipped else ""),
        file=out,
    )
    return 0 if count.failed == 0 and count.skipped == 0 else 1


def _replay_some(
    export_log: ExportLog,
    exporter: Exporter,
    letters: Sequence[StoredDeadLetter],
    count: ReplayCount,
) -> None:
    """One attempt for each: the runner's retries are for the queue, not for a person."""
    entries = [from_proto(s.letter.record) for s in letters]
    units = exporter.units(entries)
    problems: dict[int, Failure] = {}  # position -> why it failed again
    for request in pack(units, exporter.max_request_bytes - exporter.request_overhead):
        result = exporter.send([units[i] for i in request])
        outcome: dict[int, Failure] = dict(result.failed)
        if result.blocked is not None:
            outcome = dict.fromkeys(range(len(request)), result.blocked)
        for j in result.retry:
            outcome[j] = result.problem or Failure(0, "the endpoint asked for a retry")
        for j, failure in outcome.items():
            for entry in units[request[j]].entries:
                problems.setdefault(entry.position, failure)
    delivered: list[int] = []
    failed_again: list[StoredDeadLetter] = []
    for stored, entry in zip(letters, entries, strict=True):
        again = problems.get(entry.position)
        if again is None:
            delivered.append(stored.id)
            continue
        stored.letter.status = again.status
        stored.letter.message = again.message
        stored.letter.attempts += 1
        stored.letter.failed_time_unix_nano = time.time_ns()
        failed_again.append(stored)
    export_log.settle_dead_letters(delivered, failed_again)
    count.delivered += len(delivered)
    count.failed += len(failed_again)
