"""The one table of attribute keys the mapper reads, in priority order.

Each field lists the keys that can carry it, best first: current semantic
conventions, then older spellings, then vendor spellings (Langfuse, OpenLLMetry,
OpenInference, the Vercel AI SDK). Span attributes always win over resource
attributes; within one level the earlier key wins.
"""

from __future__ import annotations

from typing import Final


class Field:
    """What an attribute can say. Plain int ids, not an Enum: the mapper looks them up
    in dicts for every span, and an Enum member costs a slow class lookup each time."""

    SESSION_ID: Final = 0
    USER_ID: Final = 1
    ENVIRONMENT: Final = 2
    SERVICE: Final = 3
    CLIENT_IP: Final = 4
    USER_AGENT: Final = 5
    GEO_COUNTRY_CODE: Final = 6
    GEO_COUNTRY_NAME: Final = 7
    GEO_REGION: Final = 8
    GEO_CITY: Final = 9
    GEO_POSTAL_CODE: Final = 10
    GEO_TIMEZONE: Final = 11
    PROVIDER: Final = 12
    MODEL: Final = 13
    INPUT_TOKENS: Final = 14
    OUTPUT_TOKENS: Final = 15
    CACHE_READ_TOKENS: Final = 16
    CACHE_CREATION_TOKENS: Final = 17
    REASONING_TOKENS: Final = 18
    COST: Final = 19
    COST_DETAILS: Final = 20  # a JSON object of costs; its "total" is used
    USAGE_DETAILS: Final = 21  # Langfuse's JSON object of exclusive usage buckets
    OPERATION: Final = 22  # gen_ai.operation.name and its equivalents
    OPENINFERENCE_KIND: Final = 23
    TRACELOOP_KIND: Final = 24
    LLM_REQUEST_TYPE: Final = 25
    LANGFUSE_TYPE: Final = 26
    VERCEL_OPERATION: Final = 27
    TOOL_NAME: Final = 28
    HANDOFF_TARGET: Final = 29
    GUARDRAIL_NAME: Final = 30
    STATE_KEY: Final = 31
    TOOL_CALL_ID: Final = 32
    RESPONSE_ID: Final = 33  # one model response: spans reporting it twice count once


ALIASES: dict[int, tuple[str, ...]] = {
    Field.SESSION_ID: (
        "langfuse.session.id",
        "session.id",
        "gen_ai.conversation.id",
        "ai.telemetry.metadata.sessionId",
        "ai.settings.context.sessionId",
        "traceloop.association.properties.session_id",
        "langfuse.trace.metadata.langfuse_session_id",
        "langfuse.observation.metadata.langfuse_session_id",
        # an MCP transport session: the session when nothing above names one
        "mcp.session.id",
    ),
    Field.USER_ID: (
        "langfuse.user.id",
        "user.id",
        "enduser.id",
        "ai.telemetry.metadata.userId",
        "ai.settings.context.userId",
        "traceloop.association.properties.user_id",
        "langfuse.trace.metadata.langfuse_user_id",
        "langfuse.observation.metadata.langfuse_user_id",
    ),
    Field.ENVIRONMENT: (
        "langfuse.environment",
        "deployment.environment.name",
        "deployment.environment",
    ),
    Field.SERVICE: ("service.name",),
    Field.CLIENT_IP: (
        "client.address",
        "http.client_ip",
        "net.sock.peer.addr",
        "network.peer.address",
        "net.peer.ip",
    ),
    Field.USER_AGENT: ("user_agent.original", "http.user_agent"),
    # geo.* from the semantic conventions, then the Collector geoip processor's names.
    Field.GEO_COUNTRY_CODE: ("geo.country.iso_code",),
    Field.GEO_COUNTRY_NAME: ("geo.country_name", "geo.country.name"),
    Field.GEO_REGION: ("geo.region_name", "geo.region.name", "geo.region.iso_code"),
    Field.GEO_CITY: ("geo.locality.name", "geo.city_name"),
    Field.GEO_POSTAL_CODE: ("geo.postal_code",),
    Field.GEO_TIMEZONE: ("geo.timezone",),
    Field.PROVIDER: (
        "gen_ai.provider.name",
        "gen_ai.system",
        "llm.provider",
        "llm.system",
        "ai.model.provider",
    ),
    Field.MODEL: (
        "langfuse.observation.model.name",
        "gen_ai.response.model",
        "gen_ai.request.model",
        "llm.response.model",
        "llm.model_name",
        "ai.model.id",
        "embedding.model_name",
    ),
    Field.INPUT_TOKENS: (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.token_count.prompt",
        "llm.usage.prompt_tokens",
        "ai.usage.tokens",  # Vercel AI SDK embeddings
    ),
    Field.OUTPUT_TOKENS: (
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.token_count.completion",
        "llm.usage.completion_tokens",
    ),
    Field.CACHE_READ_TOKENS: (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
        "ai.usage.cachedInputTokens",
    ),
    Field.CACHE_CREATION_TOKENS: (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_write.input_tokens",  # the Anthropic SDK's own tracing
        "gen_ai.usage.cache_creation_input_tokens",
        "gen_ai.usage.cache_write_input_tokens",  # Strands
        "llm.token_count.prompt_details.cache_write",
    ),
    Field.REASONING_TOKENS: (
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.reasoning_tokens",
        "gen_ai.usage.details.reasoning_tokens",  # pydantic-ai
        "llm.token_count.completion_details.reasoning",
        "ai.usage.reasoningTokens",
    ),
    Field.COST: ("gen_ai.usage.cost", "llm.cost.total"),
    Field.COST_DETAILS: ("langfuse.observation.cost_details",),
    Field.USAGE_DETAILS: ("langfuse.observation.usage_details",),
    Field.OPERATION: ("gen_ai.operation.name",),
    Field.OPENINFERENCE_KIND: ("openinference.span.kind",),
    Field.TRACELOOP_KIND: ("traceloop.span.kind",),
    Field.LLM_REQUEST_TYPE: ("llm.request.type",),
    Field.LANGFUSE_TYPE: ("langfuse.observation.type",),
    Field.VERCEL_OPERATION: ("ai.operationId",),
    # either marks a tool span; the query APIs show the name and the call id
    Field.TOOL_NAME: ("gen_ai.tool.name", "ai.toolCall.name", "tool.name"),
    Field.TOOL_CALL_ID: ("gen_ai.tool.call.id", "ai.toolCall.id", "tool_call.id"),
    Field.HANDOFF_TARGET: ("gen_ai.handoff.to_agent",),
    Field.GUARDRAIL_NAME: ("gen_ai.guardrail.name",),
    Field.STATE_KEY: ("state.key", "state.path"),
    Field.RESPONSE_ID: ("gen_ai.response.id", "ai.response.id"),
}


def _build_lookup() -> dict[str, tuple[int, int]]:
    lookup: dict[str, tuple[int, int]] = {}
    for fld, keys in ALIASES.items():
        for rank, key in enumerate(keys):
            if key in lookup:
                raise ValueError(f"attribute key {key!r} is listed twice in ALIASES")
            lookup[key] = (fld, rank)
    return lookup


# key -> (field, rank): the mapper's only way to find out what an attribute means.
KEY_LOOKUP: dict[str, tuple[int, int]] = _build_lookup()
