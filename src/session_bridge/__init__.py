"""otel-session-bridge: OTLP in, LLM and agent sessions out."""

__version__ = "0.1.0"

# prometheus-client's multiprocess mode: set, every process of one bridge writes its metrics
# to files in this directory and /metrics sums them. The library reads it when first
# imported, so it must be set before anything imports prometheus_client.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
