# The compiled observation event writer's interface (`_event_json.c`);
# `session_bridge.mapping.langfuse_events` uses it.
from typing import Any

class Unsupported(ValueError): ...

def observation(
    kind: str,
    trace_id: bytes,
    span_id: bytes,
    parent_span_id: bytes | None,
    name: str,
    start_ns: int,
    end_ns: int,
    level: str,
    status_message: str | None,
    inputs: Any,
    outputs: Any,
    attributes: dict[str, Any],
    resource: dict[str, Any],
    scope_name: str,
    event_type: str,
    version: str | None,
    environment: str | None,
    generation: dict[str, Any] | None,
    /,
) -> tuple[str, bytes]: ...
def set_namespace(namespace: bytes, /) -> None: ...
def event_id(name: str, /) -> str: ...
def event_id_portable(name: str, /) -> str: ...
def sha1_instructions() -> bool: ...
def iso_from_ns(unix_ns: int, /) -> str: ...
def dumps(value: Any, /) -> bytes: ...
