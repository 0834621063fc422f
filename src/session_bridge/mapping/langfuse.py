"""Langfuse's trace-level fields, read from a trace's raw spans as Langfuse's own OTel
ingestion reads them.

Trace attributes may sit on the root span or on any other span of the trace (SDKs
propagate them): the root span is looked at first, then the others in time order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from session_bridge.mapping.payloads import (
    RawSpan,
    key_prefix_pattern,
    parse_json_text,
    span_io,
)

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
_METADATA_KEY = key_prefix_pattern(METADATA_PREFIXES)
_NOT_METADATA = frozenset({"userId", "sessionId", "tags", "langfusePrompt"})
# every key `trace_fields` reads but the metadata prefixes
_TRACE_KEYS = frozenset(
    (*TRACE_NAME_KEYS, *TRACE_INPUT_KEYS, *TRACE_OUTPUT_KEYS, *TAG_KEYS, *PUBLIC_KEYS,
     *RELEASE_KEYS, *VERSION_KEYS, METADATA_OBJECT_KEY)
)  # fmt: skip


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
    fields = [trace_fields(span, span is root) or {} for span in spans]
    return fold_trace(fields, spans[0].resource if spans else {})


def trace_fields(
    raw: RawSpan, is_root: bool, io: tuple[Any, Any] | None = None
) -> dict[str, Any] | None:
    """What one span says about its trace (None: nothing, as for most spans). Plain
    JSON values: ingest stores them with the span, and `fold_trace` combines those of a
    trace's spans whenever its trace fields are wanted. `io`: its `span_io`, if known."""
    fields: dict[str, Any] = {}
    if is_root:
        root_input, root_output = io if io is not None else span_io(raw)
        fields["root"] = {"name": raw.name, "input": root_input, "output": root_output}
    attributes = raw.attributes
    if _TRACE_KEYS.isdisjoint(attributes) and not raw.has_key_prefix(_METADATA_KEY):
        return fields or None  # most spans: not one trace attribute
    for name, keys in (
        ("name", TRACE_NAME_KEYS),
        ("input", TRACE_INPUT_KEYS),
        ("output", TRACE_OUTPUT_KEYS),
        ("release", RELEASE_KEYS),
        ("version", VERSION_KEYS),
    ):
        value = raw.first(keys)
        if value is not None:
            fields[name] = value
    tags = _tags(raw)
    if tags:
        fields["tags"] = tags
    if _is_true(raw.first(PUBLIC_KEYS)):
        fields["public"] = True
    metadata = _metadata(attributes)
    if metadata:
        fields["metadata"] = metadata
    return fields or None


def fold_trace(fields: Sequence[dict[str, Any]], resource: dict[str, Any]) -> LangfuseTrace:
    """The trace fields from its spans' `trace_fields`, the root's first (when received),
    then the others in time order; `resource`: the first span's resource attributes.
    The first span that sets a value wins, tags add up, and metadata keys of earlier
    spans win over later ones and over the resource's."""

    root = fields[0].get("root") if fields else None
    saying = [f for f in fields if f]  # most spans say nothing about their trace
    first: dict[str, Any] = {}  # each field's value from the first span that sets it
    for span_fields in saying:
        for name, value in span_fields.items():
            first.setdefault(name, value)
    trace_input, trace_output = first.get("input"), first.get("output")
    metadata = _metadata(resource)
    for span_fields in reversed(saying):
        metadata.update(span_fields.get("metadata") or {})
    return LangfuseTrace(
        name=first.get("name") or (root["name"] if root else None),
        input=parse_json_text(trace_input)
        if trace_input is not None
        else (root["input"] if root else None),
        output=parse_json_text(trace_output)
        if trace_output is not None
        else (root["output"] if root else None),
        tags=sorted({tag for f in saying for tag in f.get("tags", ())}),
        public=any(f.get("public") for f in saying),
        release=_text(first.get("release") or resource.get(RELEASE_KEYS[0])),
        version=_text(first.get("version") or resource_version(resource)),
        metadata=metadata or None,
    )


def resource_version(resource: dict[str, Any]) -> Any:
    """The version a resource names: its first of `RESOURCE_VERSION_KEYS` (None: none)."""
    for key in RESOURCE_VERSION_KEYS:
        if key in resource:
            return resource[key]
    return None


def _tags(span: RawSpan) -> list[str]:
    """An array, a JSON array as text, a comma-separated string or a single string."""
    value = parse_json_text(span.first(TAG_KEYS))
    if value is None:
        return []
    if isinstance(value, list):
        return [str(tag) for tag in value if tag not in (None, "")]
    return [tag.strip() for tag in str(value).split(",") if tag.strip()]


def _metadata(attributes: dict[str, Any]) -> dict[str, Any]:
    """The trace metadata that one span's (or a resource's) attributes set: the metadata
    object, then the prefixed keys."""
    metadata: dict[str, Any] = {}
    whole = parse_json_text(attributes.get(METADATA_OBJECT_KEY))
    if isinstance(whole, dict):
        metadata.update(whole)
    for key, value in attributes.items():
        if key.startswith(METADATA_PREFIXES):
            name = key[len(next(p for p in METADATA_PREFIXES if key.startswith(p))) :]
            if name not in _NOT_METADATA:
                metadata[name] = parse_json_text(value)
    return metadata


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
