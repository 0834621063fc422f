from __future__ import annotations

import math
import random
import socket
from datetime import UTC, datetime

import genai_prices
import pytest
from genai_prices import Usage, calc_price
from genai_prices.data_snapshot import DataSnapshot, set_custom_snapshot

from session_bridge.enrich.pricing import PROVIDER_IDS, ModelPrice, PriceBook
from session_bridge.model import LlmUsage

WHEN = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)
WHEN_NS = int(WHEN.timestamp()) * 1_000_000_000


def ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000


def library(
    model: str,
    provider_id: str | None,
    when: datetime = WHEN,
    **tokens: int,
) -> float:
    """The library's own number, computed independently of PriceBook."""
    result = calc_price(
        Usage(**tokens), model, provider_id=provider_id, genai_request_timestamp=when
    )
    return float(result.total_price)


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


def usage(provider: str | None, model: str | None, **kw: int | float | None) -> LlmUsage:
    return LlmUsage(provider=provider, model=model, **kw)  # type: ignore[arg-type]


def test_gpt4o_matches_library_and_reference(book: PriceBook) -> None:
    cost = book.cost(usage("openai", "gpt-4o", input_tokens=1000, output_tokens=200), WHEN_NS)
    assert cost == pytest.approx(library("gpt-4o", "openai", input_tokens=1000, output_tokens=200))
    assert cost == pytest.approx(0.0045)


def test_cached_tokens_are_included_in_input_and_cheaper(book: PriceBook) -> None:
    plain = book.cost(usage("openai", "gpt-4o", input_tokens=1000, output_tokens=200), WHEN_NS)
    cached = book.cost(
        usage("openai", "gpt-4o", input_tokens=1000, output_tokens=200, cache_read_tokens=800),
        WHEN_NS,
    )
    assert plain is not None and cached is not None
    assert cached < plain
    assert cached == pytest.approx(0.0035)
    assert cached == pytest.approx(
        library("gpt-4o", "openai", input_tokens=1000, output_tokens=200, cache_read_tokens=800)
    )


def test_anthropic_cache_read_and_write(book: PriceBook) -> None:
    cost = book.cost(
        usage(
            "anthropic",
            "claude-sonnet-4-5-20250929",
            input_tokens=1000,
            output_tokens=200,
            cache_read_tokens=800,
            cache_creation_tokens=100,
        ),
        WHEN_NS,
    )
    expected = library(
        "claude-sonnet-4-5-20250929",
        "anthropic",
        input_tokens=1000,
        output_tokens=200,
        cache_read_tokens=800,
        cache_write_tokens=100,
    )
    assert cost == pytest.approx(expected)
    assert cost == pytest.approx(0.003915)


def test_disjoint_cache_counts_are_tolerated(book: PriceBook) -> None:
    # Anthropic's native usage reports input_tokens WITHOUT the cached part.
    disjoint = book.cost(
        usage(
            "anthropic",
            "claude-sonnet-4-5",
            input_tokens=100,
            output_tokens=200,
            cache_read_tokens=800,
            cache_creation_tokens=100,
        ),
        WHEN_NS,
    )
    inclusive = book.cost(
        usage(
            "anthropic",
            "claude-sonnet-4-5",
            input_tokens=1000,
            output_tokens=200,
            cache_read_tokens=800,
            cache_creation_tokens=100,
        ),
        WHEN_NS,
    )
    assert disjoint == pytest.approx(inclusive)


def test_reasoning_tokens_are_part_of_output(book: PriceBook) -> None:
    base = usage("openai", "o3", input_tokens=1000, output_tokens=500)
    with_reasoning = usage(
        "openai", "o3", input_tokens=1000, output_tokens=500, reasoning_tokens=400
    )
    assert book.cost(with_reasoning, WHEN_NS) == pytest.approx(book.cost(base, WHEN_NS))


@pytest.mark.parametrize(
    ("provider", "model", "library_provider"),
    [
        ("x_ai", "grok-3", "x-ai"),
        ("xai", "grok-3", "x-ai"),
        ("gcp.gen_ai", "gemini-2.5-flash", "google"),
        ("gcp.vertex_ai", "gemini-2.5-pro", "google"),
        ("gcp.gemini", "gemini-2.5-flash", "google"),
        ("vertex_ai", "gemini-2.5-flash", "google"),
        ("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws"),
        ("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "aws"),
        ("azure.ai.openai", "gpt-4o", "azure"),
        ("az.ai.openai", "gpt-4o", "azure"),
        ("mistral_ai", "mistral-large-latest", "mistral"),
        ("moonshot_ai", "kimi-k2-0905-preview", "moonshotai"),
        ("deepseek", "deepseek-chat", "deepseek"),
        ("groq", "llama-3.3-70b-versatile", "groq"),
        ("cohere", "command-r-plus", "cohere"),
        ("OpenAI", "gpt-4o", "openai"),
        ("Anthropic", "claude-sonnet-4-5", "anthropic"),
        ("bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "aws"),
        ("google", "gemini-2.5-flash", "google"),
    ],
)
def test_provider_aliases(
    book: PriceBook, provider: str, model: str, library_provider: str
) -> None:
    assert book.provider_id(provider) == library_provider
    cost = book.cost(usage(provider, model, input_tokens=1000, output_tokens=200), WHEN_NS)
    assert cost is not None
    assert cost == pytest.approx(
        library(model, library_provider, input_tokens=1000, output_tokens=200)
    )


def test_otel_provider_values_are_all_mapped() -> None:
    otel = {
        "openai",
        "gcp.gen_ai",
        "gcp.vertex_ai",
        "gcp.gemini",
        "anthropic",
        "cohere",
        "azure.ai.inference",
        "azure.ai.openai",
        "ibm.watsonx.ai",
        "aws.bedrock",
        "perplexity",
        "x_ai",
        "deepseek",
        "groq",
        "mistral_ai",
        "moonshot_ai",
        # old gen_ai.system values
        "vertex_ai",
        "gemini",
        "az.ai.inference",
        "az.ai.openai",
        "xai",
    }
    assert otel <= set(PROVIDER_IDS)
    known = {p.id for p in genai_prices.data_snapshot.get_snapshot().providers}
    assert {v for v in PROVIDER_IDS.values() if v is not None} <= known


def test_unknown_provider_matches_by_model(book: PriceBook) -> None:
    cost = book.cost(usage("my-gateway", "gpt-4o", input_tokens=1000, output_tokens=200), WHEN_NS)
    assert cost == pytest.approx(library("gpt-4o", None, input_tokens=1000, output_tokens=200))
    no_provider = book.cost(usage(None, "gpt-4o", input_tokens=1000, output_tokens=200), WHEN_NS)
    assert no_provider == pytest.approx(cost)


def test_provider_prefixed_model(book: PriceBook) -> None:
    cost = book.cost(usage(None, "openai/gpt-4o", input_tokens=1000, output_tokens=200), WHEN_NS)
    assert cost == pytest.approx(0.0045)


def test_reported_cost_wins(book: PriceBook) -> None:
    reported = usage(
        "openai", "gpt-4o", input_tokens=1000, output_tokens=200, reported_cost_usd=0.1234
    )
    assert book.cost(reported, WHEN_NS) == 0.1234
    unknown = usage("acme", "no-such-model", input_tokens=10, reported_cost_usd=0.5)
    assert book.cost(unknown, WHEN_NS) == 0.5
    zero = usage("openai", "gpt-4o", input_tokens=1000, reported_cost_usd=0.0)
    assert book.cost(zero, WHEN_NS) == 0.0
    nan = usage(
        "openai", "gpt-4o", input_tokens=1000, output_tokens=200, reported_cost_usd=math.nan
    )
    assert book.cost(nan, WHEN_NS) == pytest.approx(0.0045)  # unusable report is ignored


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "definitely-not-a-model-9000"),
        (None, "my-private-finetune"),
        ("ibm.watsonx.ai", "ibm/granite-3-8b-instruct"),
        ("openai", None),
        ("openai", ""),
    ],
)
def test_unknown_model_is_none(book: PriceBook, provider: str | None, model: str | None) -> None:
    assert book.cost(usage(provider, model, input_tokens=1000, output_tokens=200), WHEN_NS) is None


def test_override_wins_over_library() -> None:
    book = PriceBook(
        {
            "gpt-4o": ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0),
            "ft:gpt-4o-mini:acme::abc": ModelPrice(0.3, 1.2, cached_input_per_mtok=0.15),
            "vllm/Acme-LLM-70B": ModelPrice(0.1, 0.2),
        }
    )
    gpt = book.cost(usage("openai", "gpt-4o", input_tokens=1000, output_tokens=200), WHEN_NS)
    assert gpt == pytest.approx((1000 * 1.0 + 200 * 2.0) / 1e6)
    # case-insensitive; cached input at its own price, the rest at input price
    ft = book.cost(
        usage(
            "openai",
            "FT:GPT-4o-mini:acme::abc",
            input_tokens=1000,
            output_tokens=100,
            cache_read_tokens=400,
        ),
        WHEN_NS,
    )
    assert ft == pytest.approx((600 * 0.3 + 400 * 0.15 + 100 * 1.2) / 1e6)
    # provider-prefixed key matches only that provider
    vllm = book.cost(usage("vLLM", "acme-llm-70b", input_tokens=1000, output_tokens=1000), WHEN_NS)
    assert vllm == pytest.approx(0.0003)
    assert book.cost(usage("other", "acme-llm-70b", input_tokens=1000), WHEN_NS) is None


def test_provider_prefixed_override_beats_bare_name() -> None:
    book = PriceBook(
        {"my-model": ModelPrice(1.0, 1.0), "azure.ai.openai/my-model": ModelPrice(2.0, 2.0)}
    )
    assert book.cost(usage("azure.ai.openai", "my-model", input_tokens=1_000_000), 1) == 2.0
    assert book.cost(usage("openai", "my-model", input_tokens=1_000_000), 1) == 1.0


def test_override_cache_write_price() -> None:
    book = PriceBook({"m": ModelPrice(1.0, 2.0, 0.1, cache_write_per_mtok=1.25)})
    cost = book.cost(
        usage(None, "m", input_tokens=1000, cache_read_tokens=500, cache_creation_tokens=300),
        WHEN_NS,
    )
    assert cost == pytest.approx((200 * 1.0 + 500 * 0.1 + 300 * 1.25) / 1e6)


def test_invalid_overrides() -> None:
    with pytest.raises(ValueError):
        ModelPrice(-1.0, 1.0)
    with pytest.raises(ValueError):
        ModelPrice(math.inf, 1.0)
    with pytest.raises(ValueError):
        PriceBook({"M": ModelPrice(1.0, 1.0), "m": ModelPrice(2.0, 2.0)})


def test_price_depends_on_the_call_date(book: PriceBook) -> None:
    # genai-prices: OpenAI cut o3 from $10/$40 to $2/$8 per Mtok on 2025-06-10.
    before = datetime(2025, 6, 9, 23, 59, tzinfo=UTC)
    after = datetime(2025, 6, 10, 0, 1, tzinfo=UTC)
    call = usage("openai", "o3", input_tokens=1000, output_tokens=200)
    cost_before = book.cost(call, ns(before))
    cost_after = book.cost(call, ns(after))
    assert cost_before == pytest.approx(
        library("o3", "openai", before, input_tokens=1000, output_tokens=200)
    )
    assert cost_after == pytest.approx(
        library("o3", "openai", after, input_tokens=1000, output_tokens=200)
    )
    assert cost_before == pytest.approx(0.018)
    assert cost_after == pytest.approx(0.0036)


def test_time_of_day_price_is_not_hidden_by_the_cache() -> None:
    # DeepSeek: standard price 00:30-16:30 UTC, off-peak otherwise (same UTC date).
    book = PriceBook()
    call = usage("deepseek", "deepseek-chat", input_tokens=1000, output_tokens=200)
    for hour, minute in [(12, 0), (20, 0), (0, 15), (0, 45), (16, 29), (16, 31), (12, 5)]:
        when = datetime(2025, 10, 1, hour, minute, tzinfo=UTC)
        assert book.cost(call, ns(when)) == pytest.approx(
            library("deepseek-chat", "deepseek", when, input_tokens=1000, output_tokens=200)
        ), when
    assert book.cost(call, ns(datetime(2025, 10, 1, 12, tzinfo=UTC))) != book.cost(
        call, ns(datetime(2025, 10, 1, 20, tzinfo=UTC))
    )


def test_repeated_calls_hit_the_cache() -> None:
    book = PriceBook()
    call = usage("openai", "gpt-4o", input_tokens=1234, output_tokens=56)
    first = book.cost(call, WHEN_NS)
    for offset in range(1, 50):  # same UTC day, other instants
        assert book.cost(call, WHEN_NS + offset * 60 * 1_000_000_000) == first
    info = book.cache_info()["linear"]  # gpt-4o has no size tiers: the per-token fast path
    assert (info.misses, info.hits) == (1, 49)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o"),
        ("openai", "o3"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-3-5-haiku"),
        ("gcp.gen_ai", "gemini-2.5-pro"),  # size tiers: per-token rates per tier
        ("gcp.vertex_ai", "gemini-2.5-flash"),
        ("deepseek", "deepseek-chat"),  # time-of-day prices
        ("x_ai", "grok-3"),
        ("perplexity", "sonar"),  # a per-request fee
        ("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ],
)
def test_fast_path_equals_the_library(provider: str, model: str) -> None:

    rng = random.Random(model)
    book = PriceBook()
    provider_id = book.provider_id(provider)
    for _ in range(60):
        inp = rng.choice([0, 1, 50, 1_000, 30_000, 200_000, 200_001, 250_000])  # tier: 200k
        read = rng.randint(0, inp)
        write = rng.randint(0, inp - read) if provider == "anthropic" else 0
        out = rng.choice([0, 1, 200, 8_000])
        reasoning = rng.randint(0, out) if model.startswith("o3") else 0
        when = WHEN_NS + rng.randint(0, 86_400) * 1_000_000_000
        call = usage(provider, model, input_tokens=inp, output_tokens=out,
                     cache_read_tokens=read, cache_creation_tokens=write, reasoning_tokens=reasoning)  # fmt: skip
        moment = datetime.fromtimestamp(when // 1_000_000_000, tz=UTC)
        expected = calc_price(
            Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=read or None,
                  cache_write_tokens=write or None, output_reasoning_tokens=reasoning or None),
            model, provider_id=provider_id, genai_request_timestamp=moment,
        ).total_price  # fmt: skip
        assert book.cost(call, when) == pytest.approx(float(expected), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("provider", "model"), [("anthropic", "claude-sonnet-4-5"), ("gcp.gen_ai", "gemini-2.5-pro")]
)
def test_a_size_tiered_price_is_priced_per_token_not_per_call_by_the_library(
    provider: str, model: str
) -> None:
    # every call of its own size once went through the library: ~250 us each
    book = PriceBook()
    rng = random.Random(7)
    for _ in range(200):
        inp = rng.randint(0, 400_000)
        book.cost(
            usage(provider, model, input_tokens=inp, output_tokens=rng.randint(0, 9_000)), WHEN_NS
        )
    info = book.cache_info()
    assert info["linear"].misses == 1  # the rates of both tiers, read once
    assert info["price"].misses <= 2 * 7  # the probes of two ranges, not one call per size


def test_pricebook_ignores_global_custom_snapshot() -> None:
    book = PriceBook()
    set_custom_snapshot(DataSnapshot(providers=[], from_auto_update=True))
    try:
        cost = book.cost(usage("openai", "gpt-4o", input_tokens=1000, output_tokens=200), WHEN_NS)
    finally:
        set_custom_snapshot(None)
    assert cost == pytest.approx(0.0045)


def test_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    book = PriceBook()
    assert book.cost(
        usage("gcp.gen_ai", "gemini-2.5-pro", input_tokens=300_000, output_tokens=1000), WHEN_NS
    ) == pytest.approx(
        library("gemini-2.5-pro", "google", input_tokens=300_000, output_tokens=1000)
    )


def test_out_of_range_timestamp_is_none_not_an_error(book: PriceBook) -> None:
    call = usage("openai", "gpt-4o", input_tokens=1000, output_tokens=200)
    assert book.cost(call, 10**30) is None
    assert book.cost(call, 0) is not None  # unset start time: priced now
