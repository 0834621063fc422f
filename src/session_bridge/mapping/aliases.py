"""The one table of attribute keys the mapper reads, in priority order.

Each field lists the keys that can carry it, best first: current semantic
conventions, then older spellings, then vendor spellings (Langfuse, OpenLLMetry,
OpenInference, the Vercel AI SDK). Span attributes always win over resource
attributes; within one level the earlier key wins.
"""

from __future__ import annotations

from enum import IntEnum


class Field(IntEnum):
    SESSION_ID = 0
    USER_ID = 1
    ENVIRONMENT = 2
    SERVICE = 3
    CLIENT_IP = 4
    USER_AGENT = 5
    GEO_COUNTRY_CODE = 6
    GEO_COUNTRY_NAME = 7
    GEO_REGION = 8
    GEO_CITY = 9
    GEO_POSTAL_CODE = 10
    GEO_TIMEZONE = 11
    PROVIDER = 12
    MODEL = 13
    INPUT_TOKENS = 14
    OUTPUT_TOKENS = 15
    CACHE_READ_TOKENS = 16
    CACHE_CREATION_TOKENS = 17
    REASONING_TOKENS = 18
    COST = 19
    COST_DETAILS = 20  # a JSON object of costs; its "total" is used
    USAGE_DETAILS = 21  # Langfuse's JSON object of exclusive usage buckets
    OPERATION = 22  # gen_ai.operation.name and its equivalents
    OPENINFERENCE_KIND = 23
    TRACELOOP_KIND = 24
    LLM_REQUEST_TYPE = 25
    LANGFUSE_TYPE = 26
    VERCEL_OPERATION = 27
    TOOL_NAME = 28
    HANDOFF_TARGET = 29
    GUARDRAIL_NAME = 30
    STATE_KEY = 31


ALIASES: dict[Field, tuple[str, ...]] = {
    Field.SESSION_ID: (
        "langfuse.session.id",
        "session.id",
        "gen_ai.conversation.id",
        "ai.telemetry.metadata.sessionId",
        "ai.settings.context.sessionId",
        "traceloop.association.properties.session_id",
        "langfuse.trace.metadata.langfuse_session_id",
        "langfuse.observation.metadata.langfuse_session_id",
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
        "gen_ai.usage.cache_creation_input_tokens",
        "llm.token_count.prompt_details.cache_write",
    ),
    Field.REASONING_TOKENS: (
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.reasoning_tokens",
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
    Field.TOOL_NAME: ("gen_ai.tool.name", "gen_ai.tool.call.id", "ai.toolCall.name"),
    Field.HANDOFF_TARGET: ("gen_ai.handoff.to_agent",),
    Field.GUARDRAIL_NAME: ("gen_ai.guardrail.name",),
    Field.STATE_KEY: ("state.key", "state.path"),
}

# Resource attributes rank below every span attribute.
RESOURCE_RANK_OFFSET = 1000


def _build_lookup() -> dict[str, tuple[Field, int]]:
    lookup: dict[str, tuple[Field, int]] = {}
    for fld, keys in ALIASES.items():
        for rank, key in enumerate(keys):
            if key in lookup:
                raise ValueError(f"attribute key {key!r} is listed twice in ALIASES")
            lookup[key] = (fld, rank)
    return lookup


# key -> (field, rank): the mapper's only way to find out what an attribute means.
KEY_LOOKUP: dict[str, tuple[Field, int]] = _build_lookup()
