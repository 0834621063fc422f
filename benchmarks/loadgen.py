"""OTLP/trace load generator for ingest-throughput benchmarks.

Runs in its own process and sends realistic GenAI agent traffic (sessions of several turns;
each turn is a trace made of an ``invoke_agent`` span wrapping ``chat`` and ``execute_tool``
spans) to an OTLP receiver on 127.0.0.1, over gRPC (``TraceService/Export``) or HTTP
(``POST /v1/traces``, ``application/x-protobuf``), keeping N requests in flight.

Client CPU is kept low: a cycle of ``--templates`` requests is generated and serialized once,
before the timed phase (``payloads.py``), so building a request is one ``bytes.join``; the
clients and the timed loop are in ``senders.py``.

Output: a human summary, or with ``--json`` a single JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass

from payloads import RequestFactory, checked_templates
from senders import http_prefix, open_senders, send_load


@dataclass
class Result:
    transport: str
    port: int
    concurrency: int
    spans_per_request: int
    templates: int
    requests_ok: int
    requests_failed: int
    spans_sent_ok: int
    spans_rejected: int
    spans_acknowledged: int
    elapsed_s: float
    spans_per_s: float
    requests_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    mean_request_bytes: int
    build_s: float
    client_cpu_s: float
    client_cpu_pct: float
    machine_cpu_pct: float  # user+system time of all processes, 100 = one core busy
    machine_irq_pct: float  # irq + softirq (loopback TCP work lands largely here)
    machine_steal_pct: float  # time the hypervisor gave our vCPUs to someone else
    stopped_by: str
    errors: dict[str, int]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(q / 100.0 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def run(args: argparse.Namespace) -> Result:
    t_build = time.perf_counter()
    templates = checked_templates(args.templates, args.spans_per_request, args.seed)
    prefixes = None
    if args.transport == "http":
        prefixes = [http_prefix(args.port, t.body_size) for t in templates]
    factory = RequestFactory(templates, prefixes)
    max_requests = min(args.max_requests, factory.max_requests())
    build_s = time.perf_counter() - t_build

    # `--ports`: the connections go round-robin to several servers (bridge replicas)
    ports: list[int] = args.ports or [args.port]
    senders, close = open_senders(
        args.transport, ports, args.concurrency, args.channels, args.timeout
    )
    load = send_load(senders, factory.build, args.seconds, max_requests)
    close()

    elapsed, cpu, delta = load.elapsed_s, load.cpu_s, load.jiffies
    scale = 100.0 * (os.cpu_count() or 1) / max(1, delta[3])
    stats = load.stats
    latencies = sorted(x for st in stats for x in st.latencies)
    errors: dict[str, int] = {}
    for st in stats:
        for k, v in st.error_samples.items():
            errors[k] = errors.get(k, 0) + v
    ok = sum(st.ok for st in stats)
    spans = sum(st.spans for st in stats)
    rejected = sum(st.rejected for st in stats)
    acked = spans - rejected
    return Result(
        transport=args.transport,
        port=args.port,
        concurrency=args.concurrency,
        spans_per_request=args.spans_per_request,
        templates=args.templates,
        requests_ok=ok,
        requests_failed=sum(st.errors for st in stats),
        spans_sent_ok=spans,
        spans_rejected=rejected,
        spans_acknowledged=acked,
        elapsed_s=round(elapsed, 4),
        spans_per_s=round(acked / elapsed, 1) if elapsed > 0 else 0.0,
        requests_per_s=round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        latency_p50_ms=round(percentile(latencies, 50) * 1000, 3),
        latency_p99_ms=round(percentile(latencies, 99) * 1000, 3),
        latency_max_ms=round((latencies[-1] if latencies else 0.0) * 1000, 3),
        mean_request_bytes=sum(t.body_size for t in templates) // len(templates),
        build_s=round(build_s, 3),
        client_cpu_s=round(cpu, 3),
        client_cpu_pct=round(100.0 * cpu / elapsed, 1) if elapsed > 0 else 0.0,
        machine_cpu_pct=round(delta[0] * scale, 1),
        machine_irq_pct=round(delta[1] * scale, 1),
        machine_steal_pct=round(delta[2] * scale, 1),
        stopped_by=load.stopped_by,
        errors=errors,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--transport", choices=["grpc", "http"], required=True)
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1")
    p.add_argument(
        "--ports",
        type=lambda text: [int(x) for x in text.split(",") if x],
        default=[],
        help="comma list of ports on 127.0.0.1 (instead of --port): connections round-robin",
    )
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    p.add_argument("--seconds", type=float, default=10.0, help="time limit (default 10)")
    p.add_argument(
        "--max-requests", type=int, default=10_000_000, help="request limit (default 10M)"
    )
    p.add_argument(
        "--channels",
        type=int,
        default=4,
        help="gRPC connections the in-flight requests are spread over (default 4)",
    )
    p.add_argument("--spans-per-request", type=int, default=512)
    p.add_argument(
        "--templates", type=int, default=16, help="distinct request templates in a cycle"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = p.parse_args(argv)
    if min(args.concurrency, args.channels, args.templates, args.spans_per_request) < 1:
        p.error("--concurrency, --channels, --templates and --spans-per-request must be >= 1")
    if not args.port and not args.ports:
        p.error("--port or --ports is required")
    if args.ports:
        args.port = args.ports[0]
        if args.concurrency < len(args.ports):
            p.error("--concurrency must be at least the number of --ports")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        r = result
        print(
            f"{r.transport} 127.0.0.1:{r.port} c={r.concurrency}: "
            f"{r.spans_acknowledged} spans acknowledged in {r.elapsed_s:.2f}s = "
            f"{r.spans_per_s:,.0f} spans/s ({r.requests_per_s:,.0f} req/s of "
            f"{r.mean_request_bytes:,} B), p50 {r.latency_p50_ms:.2f} ms, "
            f"p99 {r.latency_p99_ms:.2f} ms, errors {r.requests_failed}, "
            f"client CPU {r.client_cpu_pct:.0f}%"
        )
        for err, count in r.errors.items():
            print(f"  error x{count}: {err}", file=sys.stderr)
    return 0 if result.requests_ok > 0 and result.requests_failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
