"""otel-session-bridge: OTLP in, LLM and agent sessions out."""

__version__ = "0.1.0"
