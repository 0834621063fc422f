"""Langfuse's trace-level fields, read from a trace's raw spans as Langfuse reads them
(`OtelIngestionProcessor`; see `shared/reference/langfuse.md` §1.1-1.2, 1.5).

Trace attributes may sit on the root span or on any other span of the trace (SDKs
propagate them): the root span is looked at first, then the others in time order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from session_bridge.mapping.payloads import RawSpan, parse_json_text, span_io

TRACE_NAME_KEYS = ("langfuse.trace.name",)
TRACE_INPUT_KEYS = ("langfuse.trace.input",)
TRACE_OUTPUT_KEYS = ("langfuse.trace.output",)
TAG_KEYS = (
    "langfuse.trace.tags",
    "langfuse.tags",
    "langfuse.observation.metadata.langfuse_tags",
    "langfuse.trace.metadata.langfuse_tags",
    "ai.telemetry.metadata.tags",
    "tag.tags",
)
PUBLIC_KEYS = ("langfuse.trace.public", "langfuse.public")
RELEASE_KEYS = ("langfuse.release",)  # span, then resource
VERSION_KEYS = ("langfuse.version",)  # span, then resource service.version
RESOURCE_VERSION_KEYS = ("langfuse.version", "service.version")
METADATA_OBJECT_KEY = "langfuse.trace.metadata"
METADATA_PREFIXES = ("langfuse.trace.metadata.", "langfuse.metadata.", "ai.telemetry.metadata.")
_NOT_METADATA = frozenset({"userId", "sessionId", "tags", "langfusePrompt"})


@dataclass(slots=True)
class LangfuseTrace:
    name: str | None
    input: Any
    output: Any
    tags: list[str]
    public: bool
    release: str | None
    version: str | None
    metadata: dict[str, Any] | None


def langfuse_trace(root: RawSpan | None, others: Sequence[RawSpan]) -> LangfuseTrace:
    """The trace fields, from its root span (None: not received) and its other spans."""
    spans = [root, *others] if root is not None else list(others)
    root_io = span_io(root) if root is not None else (None, None)
    trace_input = _first(spans, TRACE_INPUT_KEYS)
    trace_output = _first(spans, TRACE_OUTPUT_KEYS)
    resource = spans[0].resource if spans else {}
    return LangfuseTrace(
        name=_first(spans, TRACE_NAME_KEYS) or (root.name if root is not None else None),
        input=parse_json_text(trace_input) if trace_input is not None else root_io[0],
        output=parse_json_text(trace_output) if trace_output is not None else root_io[1],
        tags=sorted({tag for span in spans for tag in _tags(span)}),
        public=any(_is_true(span.first(PUBLIC_KEYS)) for span in spans),
        release=_text(_first(spans, RELEASE_KEYS) or resource.get(RELEASE_KEYS[0])),
        version=_text(
            _first(spans, VERSION_KEYS)
            or next((resource[k] for k in RESOURCE_VERSION_KEYS if k in resource), None)
        ),
        metadata=_metadata(resource, spans),
    )


def _first(spans: Sequence[RawSpan], keys: tuple[str, ...]) -> Any:
    return next((v for span in spans if (v := span.first(keys)) is not None), None)


def _tags(span: RawSpan) -> list[str]:
    """An array, a JSON array as text, a comma-separated string or a single string."""
    value = parse_json_text(span.first(TAG_KEYS))
    if value is None:
        return []
    if isinstance(value, list):
        return [str(tag) for tag in value if tag not in (None, "")]
    return [tag.strip() for tag in str(value).split(",") if tag.strip()]


def _metadata(resource: dict[str, Any], spans: Sequence[RawSpan]) -> dict[str, Any] | None:
    metadata: dict[str, Any] = {}
    for attributes in (resource, *(span.attributes for span in reversed(spans))):
        whole = parse_json_text(attributes.get(METADATA_OBJECT_KEY))
        if isinstance(whole, dict):
            metadata.update(whole)
        for key, value in attributes.items():
            for prefix in METADATA_PREFIXES:
                if key.startswith(prefix) and key[len(prefix) :] not in _NOT_METADATA:
                    metadata[key[len(prefix) :]] = parse_json_text(value)
    return metadata or None


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
