from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SpanRecord(_message.Message):
    __slots__ = ("sequence", "project_id", "trace_id", "span_id", "parent_span_id", "name", "kind", "start_time_unix_nano", "end_time_unix_nano", "status_code", "status_message", "event_type", "is_error", "service", "environment", "session_id", "user_id", "llm", "cost_usd", "scope_name", "otlp_span", "otlp_resource", "trace_start_time_unix_nano", "response_id")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    START_TIME_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    END_TIME_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    IS_ERROR_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LLM_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    SCOPE_NAME_FIELD_NUMBER: _ClassVar[int]
    OTLP_SPAN_FIELD_NUMBER: _ClassVar[int]
    OTLP_RESOURCE_FIELD_NUMBER: _ClassVar[int]
    TRACE_START_TIME_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    project_id: str
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    name: str
    kind: int
    start_time_unix_nano: int
    end_time_unix_nano: int
    status_code: int
    status_message: str
    event_type: str
    is_error: bool
    service: str
    environment: str
    session_id: str
    user_id: str
    llm: LlmUsage
    cost_usd: float
    scope_name: str
    otlp_span: bytes
    otlp_resource: bytes
    trace_start_time_unix_nano: int
    response_id: str
    def __init__(self, sequence: _Optional[int] = ..., project_id: _Optional[str] = ..., trace_id: _Optional[bytes] = ..., span_id: _Optional[bytes] = ..., parent_span_id: _Optional[bytes] = ..., name: _Optional[str] = ..., kind: _Optional[int] = ..., start_time_unix_nano: _Optional[int] = ..., end_time_unix_nano: _Optional[int] = ..., status_code: _Optional[int] = ..., status_message: _Optional[str] = ..., event_type: _Optional[str] = ..., is_error: _Optional[bool] = ..., service: _Optional[str] = ..., environment: _Optional[str] = ..., session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., llm: _Optional[_Union[LlmUsage, _Mapping]] = ..., cost_usd: _Optional[float] = ..., scope_name: _Optional[str] = ..., otlp_span: _Optional[bytes] = ..., otlp_resource: _Optional[bytes] = ..., trace_start_time_unix_nano: _Optional[int] = ..., response_id: _Optional[str] = ...) -> None: ...

class LlmUsage(_message.Message):
    __slots__ = ("provider", "model", "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "reasoning_tokens")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_READ_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_CREATION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REASONING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    reasoning_tokens: int
    def __init__(self, provider: _Optional[str] = ..., model: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cache_read_tokens: _Optional[int] = ..., cache_creation_tokens: _Optional[int] = ..., reasoning_tokens: _Optional[int] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("exporter", "failed_time_unix_nano", "status", "message", "attempts", "record")
    EXPORTER_FIELD_NUMBER: _ClassVar[int]
    FAILED_TIME_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    exporter: str
    failed_time_unix_nano: int
    status: int
    message: str
    attempts: int
    record: SpanRecord
    def __init__(self, exporter: _Optional[str] = ..., failed_time_unix_nano: _Optional[int] = ..., status: _Optional[int] = ..., message: _Optional[str] = ..., attempts: _Optional[int] = ..., record: _Optional[_Union[SpanRecord, _Mapping]] = ...) -> None: ...
