"""otel-session-bridge: OTLP in, LLM and agent sessions out."""

import sys

# httpx loads its command line (click, rich, pygments) wherever those are installed: ~3 MB
# in each process that imports httpx (the bridge and its export process), for a command
# the bridge never runs. httpx does without it.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # (None: not importable)

__version__ = "0.1.0"

# prometheus-client's multiprocess mode: set, every process of one bridge writes its metrics
# to files in this directory and /metrics sums them. The library reads it when first
# imported, so it must be set before anything imports prometheus_client.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
