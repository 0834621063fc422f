"""Which provider served a model call: the one table of provider names.

Instrumentations put more than the model's provider in `gen_ai.provider.name` /
`gen_ai.system` & co.: agent frameworks write their own name (Strands writes
`strands-agents`), and API flavours name the API as well (`openai.chat`,
`openai.responses`, `azure.ai.openai`, `gcp.vertex_ai`). A framework is never a provider;
a flavour is its provider (the part before the first dot, with the few vendor prefixes
below mapped); with no real provider, the provider is inferred from the model name where
the bundled price data knows the model, else there is none.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot

# Agent frameworks, orchestration libraries and gateways that write their own name where
# the provider belongs. Lowercase.
FRAMEWORKS: Final = frozenset(
    {
        "strands-agents",
        "strands",
        "langchain",
        "langgraph",
        "crewai",
        "llama_index",
        "llama-index",
        "llamaindex",
        "pydantic_ai",
        "pydantic-ai",
        "openai_agents",
        "openai-agents",
        "google_adk",
        "google-adk",
        "autogen",
        "ag2",
        "semantic_kernel",
        "semantic-kernel",
        "haystack",
        "dspy",
        "agno",
        "smolagents",
        "mastra",
        "litellm",
        "beeai",
    }
)

# The first dotted part of a flavour that is not its provider's own name.
_FLAVOUR_PREFIXES: Final = {
    "az": "azure",
    "azure-openai": "azure",
    "gcp": "google",
    "vertex": "google",
    "amazon-bedrock": "aws",
}

_CACHE_SIZE: Final = 4_096


def normalise_provider(sent: str | None, model: str | None) -> str | None:
    """The model's provider from what a span sent (`sent`) and its model name."""
    if sent:
        key = sent.strip().lower()
        if key and key not in FRAMEWORKS:
            return _flavour_provider(key)
    return provider_of_model(model) if model else None


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _flavour_provider(key: str) -> str:
    head, dot, _ = key.partition(".")
    if not dot:
        return key
    return _FLAVOUR_PREFIXES.get(head, head)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def provider_of_model(model: str) -> str | None:
    """The provider whose price data lists `model` (genai-prices' model-only match)."""
    name = model.strip().lower()
    if not name:
        return None
    try:
        found, _ = _snapshot().find_provider_model(name, None, None, None)
    except LookupError:
        return None
    return str(found.id)


@functools.cache
def _snapshot() -> DataSnapshot:
    # loaded on first use: the price data is megabytes, and the processes that never map
    # spans (the bridge beside its map workers, the export process) never need it
    from genai_prices.data import providers
    from genai_prices.data_snapshot import DataSnapshot

    # the bundled data only: no update from the network, the same answer every run
    return DataSnapshot(providers=providers, from_auto_update=False)
