"""Estimated USD cost of one LLM call, from token usage -> `float | None`.

Price data comes from `genai-prices` (the snapshot bundled in the wheel). Each `PriceBook`
uses its own `DataSnapshot` of the bundled data, so neither the library's online updater
(`UpdatePrices`, never started here) nor a process-wide custom snapshot can change the
numbers: no network access, deterministic results for a given library version.

Order of precedence in `PriceBook.cost`:

1. `usage.reported_cost_usd` (a finite, non-negative cost the sender computed) is returned
   as is.
2. A user-configured `ModelPrice` override (fine-tuned / self-hosted / negotiated prices).
   Override keys are normalised with `strip().lower()`; a call matches
   `"<provider>/<model>"` (the provider as sent, then its genai-prices id from
   `PROVIDER_IDS`) before the bare `"<model>"`.
3. genai-prices, priced at the call's own start time (`genai_request_timestamp`), because
   prices change over time (488 start-date changes in 0.2.3) and DeepSeek has off-peak
   (time-of-day) prices. The provider is mapped with `PROVIDER_IDS`; names that already are
   genai-prices ids pass through; anything else is left to the library's model-only match.
   If the mapped provider does not list the model, the model-only match is tried too (e.g.
   Claude on Vertex AI, OpenAI models on Azure that `azure` lacks), and a model written as
   `"provider/model"` is retried with the prefix as provider.
4. Unknown model (or no model) -> None, never 0.

Token semantics follow the OTel GenAI conventions: `input_tokens` INCLUDES cache-read and
cache-creation tokens, `output_tokens` INCLUDES reasoning tokens (the same convention
genai-prices uses). Senders that report them disjointly (cache_read + cache_creation >
input_tokens, or reasoning > output_tokens, which is impossible under the convention) are
tolerated by adding the parts to the total. Negative counts count as 0.

Caching: the (provider, model) resolution and the price are memoised per instance in bounded
LRUs. The price key is (genai-prices provider id, model, input, output, cache_read,
cache_creation, reasoning, UTC day, start of the model's time-of-day price window). The
window is derived from the model's `TimeOfDateConstraint`s (e.g. DeepSeek 00:30-16:30 UTC),
so it is 0 for every model without time-of-day prices and the key stays exact. Most calls
never reach that cache: per (model, day, window), the per-token rates of each range of
input tokens the price's size tiers tell apart are read off the library once and checked
against it (`_PiecewisePrice`), so a call costs a few multiplications instead of a library
calculation (about 250 us for a size-tiered price).
"""

from __future__ import annotations

import bisect
import datetime as _dt
import functools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple

from genai_prices import Usage
from genai_prices.data import providers as _bundled_providers
from genai_prices.data_snapshot import DataSnapshot
from genai_prices.types import ModelInfo, TieredPrices, TimeOfDateConstraint

from session_bridge.model import LlmUsage

__all__ = ["PROVIDER_IDS", "ModelPrice", "PriceBook", "library_provider_id"]

_NS_PER_S: Final = 1_000_000_000
_S_PER_DAY: Final = 86_400

# OTel `gen_ai.provider.name` (and old `gen_ai.system`) values and common vendor spellings
# -> genai-prices provider id. None = the library has no such provider: match by model only.
# Keys are lowercase; lookups use `name.strip().lower()`.
PROVIDER_IDS: Final[Mapping[str, str | None]] = {
    # OpenAI
    "openai": "openai",
    "open_ai": "openai",
    # Anthropic
    "anthropic": "anthropic",
    "claude": "anthropic",
    # AWS Bedrock
    "aws.bedrock": "aws",
    "aws_bedrock": "aws",
    "bedrock": "aws",
    "amazon-bedrock": "aws",
    "amazon_bedrock": "aws",
    "aws": "aws",
    # Azure (OpenAI service and AI Inference / Foundry)
    "azure.ai.openai": "azure",
    "az.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.inference": "azure",
    "azure": "azure",
    "azure_openai": "azure",
    "azure-openai": "azure",
    "azure_ai": "azure",
    # Google (Gemini API, Vertex AI)
    "gcp.gen_ai": "google",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "vertex_ai": "google",
    "vertexai": "google",
    "gemini": "google",
    "google": "google",
    "google_genai": "google",
    "google-genai": "google",
    "google.genai": "google",
    # xAI
    "x_ai": "x-ai",
    "xai": "x-ai",
    "x-ai": "x-ai",
    "grok": "x-ai",
    # Mistral
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "mistral": "mistral",
    # Moonshot
    "moonshot_ai": "moonshotai",
    "moonshot": "moonshotai",
    "moonshotai": "moonshotai",
    # same id in OTel and genai-prices
    "cohere": "cohere",
    "deepseek": "deepseek",
    "groq": "groq",
    "perplexity": "perplexity",
    # no genai-prices provider
    "ibm.watsonx.ai": None,
    "watsonx": None,
}


def library_provider_id(name: str | None, known_ids: frozenset[str] = frozenset()) -> str | None:
    """genai-prices provider id for an OTel/vendor provider name (None: match by model)."""
    if not name:
        return None
    key = name.strip().lower()
    if key in PROVIDER_IDS:
        return PROVIDER_IDS[key]
    return key if key in known_ids else None


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """User-configured price in USD per million tokens.

    `cached_input_per_mtok` applies to cache-read tokens and `cache_write_per_mtok` to
    cache-creation tokens; None means "same as input". Reasoning tokens are output tokens.
    """

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "input_per_mtok",
            "output_per_mtok",
            "cached_input_per_mtok",
            "cache_write_per_mtok",
        ):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"ModelPrice.{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"ModelPrice.{name} must be finite and >= 0, got {value!r}")

    def cost(
        self, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int
    ) -> float:
        """USD for one call; `input_tokens` includes `cache_read` and `cache_write`."""
        cached = (
            self.input_per_mtok
            if self.cached_input_per_mtok is None
            else (self.cached_input_per_mtok)
        )
        write = (
            self.input_per_mtok
            if self.cache_write_per_mtok is None
            else (self.cache_write_per_mtok)
        )
        uncached = max(input_tokens - cache_read - cache_write, 0)
        return (
            uncached * self.input_per_mtok
            + cache_read * cached
            + cache_write * write
            + output_tokens * self.output_per_mtok
        ) / 1_000_000


class _LibraryModel(NamedTuple):
    provider_id: str  # genai-prices provider that lists the model
    model_ref: str  # the model string that matched
    boundaries: tuple[int, ...]  # sorted UTC seconds-of-day where time-of-day prices switch


class PriceBook:
    """Estimate LLM call costs (see the module docstring for the rules)."""

    def __init__(
        self,
        overrides: Mapping[str, ModelPrice] | None = None,
        cache_size: int = 16_384,
        resolve_cache_size: int = 4_096,
    ) -> None:
        if cache_size < 0 or resolve_cache_size < 0:
            raise ValueError("cache sizes must be >= 0")
        normalised: dict[str, ModelPrice] = {}
        for key, price in (overrides or {}).items():
            if not isinstance(price, ModelPrice):
                raise TypeError(f"override {key!r} must be a ModelPrice, got {type(price)}")
            norm = key.strip().lower()
            if not norm:
                raise ValueError("override model names must not be empty")
            if norm in normalised and normalised[norm] != price:
                raise ValueError(f"overrides {key!r} and another key both normalise to {norm!r}")
            normalised[norm] = price
        self._overrides: Mapping[str, ModelPrice] = normalised
        self._snapshot = DataSnapshot(providers=_bundled_providers, from_auto_update=False)
        self._known_ids = frozenset(p.id for p in _bundled_providers)
        self._resolve = functools.lru_cache(maxsize=resolve_cache_size)(self._resolve_uncached)
        self._price = functools.lru_cache(maxsize=cache_size)(self._price_uncached)
        self._linear = functools.lru_cache(maxsize=resolve_cache_size)(self._linear_uncached)

    # -- public API -----------------------------------------------------------------

    def cost(self, usage: LlmUsage, at_unix_ns: int) -> float | None:
        """Estimated (or sender-reported) USD for one LLM call started at `at_unix_ns`.

        `at_unix_ns` is the span start time (Unix epoch, ns); values <= 0 (unset) mean now.
        """
        reported = usage.reported_cost_usd
        if reported is not None and math.isfinite(reported) and reported >= 0:
            return float(reported)
        model = usage.model
        if not model:
            return None
        resolved = self._resolve(usage.provider, model)
        if resolved is None:
            return None

        inp = max(usage.input_tokens, 0)
        out = max(usage.output_tokens, 0)
        cache_read = max(usage.cache_read_tokens, 0)
        cache_write = max(usage.cache_creation_tokens, 0)
        reasoning = max(usage.reasoning_tokens, 0)
        if cache_read + cache_write > inp:  # sender reported disjoint counts
            inp += cache_read + cache_write
        if reasoning > out:
            out += reasoning

        if isinstance(resolved, ModelPrice):
            return resolved.cost(inp, out, cache_read, cache_write)

        if at_unix_ns <= 0:
            at_unix_ns = time.time_ns()
        day, second = divmod(at_unix_ns // _NS_PER_S, _S_PER_DAY)
        window = 0
        if resolved.boundaries:
            index = bisect.bisect_right(resolved.boundaries, second)
            window = resolved.boundaries[index - 1] if index else 0
        rates = self._linear(resolved.provider_id, resolved.model_ref, day, window)
        linear = rates.pieces[bisect.bisect_left(rates.starts, inp)] if rates else None
        if linear is not None:
            return linear.cost(inp, out, cache_read, cache_write, reasoning)
        return self._price(
            resolved.provider_id,
            resolved.model_ref,
            inp,
            out,
            cache_read,
            cache_write,
            reasoning,
            day,
            window,
        )

    def provider_id(self, name: str | None) -> str | None:
        """The genai-prices provider id used for a provider name (None: model-only match)."""
        return library_provider_id(name, self._known_ids)

    def cache_info(self) -> dict[str, functools._CacheInfo]:
        return {
            "resolve": self._resolve.cache_info(),
            "price": self._price.cache_info(),
            "linear": self._linear.cache_info(),
        }

    # -- internals ------------------------------------------------------------------

    def _resolve_uncached(
        self, provider: str | None, model: str
    ) -> ModelPrice | _LibraryModel | None:
        model_ref = model.strip()
        if not model_ref:
            return None
        lowered = model_ref.lower()
        provider_norm = provider.strip().lower() if provider else ""
        provider_id = library_provider_id(provider_norm, self._known_ids)

        if self._overrides:
            candidates = []
            if provider_norm:
                candidates.append(f"{provider_norm}/{lowered}")
            if provider_id and provider_id != provider_norm:
                candidates.append(f"{provider_id}/{lowered}")
            candidates.append(lowered)
            for candidate in candidates:
                if (price := self._overrides.get(candidate)) is not None:
                    return price

        attempts: list[tuple[str | None, str]] = [(provider_id, lowered)]
        if provider_id is not None:
            attempts.append((None, lowered))
        prefix, slash, rest = lowered.partition("/")
        if slash and rest:
            prefixed_id = library_provider_id(prefix, self._known_ids)
            if prefixed_id is not None:
                attempts.append((prefixed_id, rest))
        for attempt_provider, attempt_model in attempts:
            try:
                found_provider, model_info = self._snapshot.find_provider_model(
                    attempt_model, None, attempt_provider, None
                )
            except LookupError:
                continue
            return _LibraryModel(found_provider.id, attempt_model, _time_boundaries(model_info))
        return None

    def _price_uncached(
        self,
        provider_id: str,
        model_ref: str,
        input_tokens: int,
        output_tokens: int,
        cache_read: int,
        cache_write: int,
        reasoning: int,
        day: int,
        window_start: int,
    ) -> float | None:
        usage = Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read or None,
            cache_write_tokens=cache_write or None,
            output_reasoning_tokens=reasoning or None,
        )
        try:
            # Any instant in (day, window) has the same price; use the window's start.
            timestamp = _dt.datetime.fromtimestamp(day * _S_PER_DAY + window_start, tz=_dt.UTC)
            calculation = self._snapshot.calc(usage, model_ref, provider_id, None, timestamp)
        except (LookupError, ValueError, ArithmeticError, OSError):
            return None
        return float(calculation.total_price)

    def _linear_uncached(
        self, provider_id: str, model_ref: str, day: int, window_start: int
    ) -> _PiecewisePrice | None:
        """Per-token rates of a price, read off the library itself, for each range of
        input tokens its size tiers tell apart (one range when it has none).

        A tier's rates apply to every token of a call whose input tokens exceed the tier's
        start, so within a range the price is affine in the token counts: six library
        calls in the range give its coefficients, and a seventh, at an unrelated point,
        must agree or the range goes through the library (as does the whole price when
        the library does not say what it is).
        """
        try:
            moment = _dt.datetime.fromtimestamp(day * _S_PER_DAY + window_start, tz=_dt.UTC)
            _, model_info = self._snapshot.find_provider_model(model_ref, None, provider_id, None)
            price = model_info.get_prices(moment)
        except (LookupError, ValueError, OverflowError, OSError):
            return None
        tiered = [value for value in vars(price).values() if isinstance(value, TieredPrices)]
        starts = tuple(sorted({tier.start for value in tiered for tier in value.tiers}))

        def library(inp: int, out: int, read: int, write: int, reasoning: int) -> float | None:
            return self._price_uncached(
                provider_id, model_ref, inp, out, read, write, reasoning, day, window_start
            )

        pieces = []
        low = 0  # range i holds the input token counts in [low, starts[i]]
        for high in (*starts, None):
            pieces.append(_fit(library, low, _PROBE_TOKENS if high is None else high - low))
            low = (high or 0) + 1
        return _PiecewisePrice(starts, tuple(pieces))


def _fit(
    library: Callable[[int, int, int, int, int], float | None], low: int, span: int
) -> _LinearPrice | None:
    """The affine price of the calls with `low` to `low + span` input tokens (None: the
    probes disagree, or the range is empty)."""
    if span < 1:
        return None
    m, q = span, low  # probes at q and q + m input tokens; the others vary by m
    probes = (
        library(q, 0, 0, 0, 0),
        library(q + m, 0, 0, 0, 0),
        library(q, m, 0, 0, 0),
        library(q + m, 0, m, 0, 0),
        library(q + m, 0, 0, m, 0),
        library(q, m, 0, 0, m),
    )
    if any(p is None for p in probes):
        return None
    at_q, inp, out, read, write, reasoning = (float(p) for p in probes)  # type: ignore[arg-type]
    per_input = (inp - at_q) / m
    linear = _LinearPrice(
        base=at_q - q * per_input,
        input=per_input,
        output=(out - at_q) / m,
        cache_read=(read - at_q) / m,
        cache_write=(write - at_q) / m,
        reasoning=(reasoning - at_q) / m,
    )
    # an unrelated call in the range: input, output, cache read, cache write, reasoning
    extra = min(7_919, m)
    point = (q + extra, 1_223, extra * 3 // 8, extra // 8, 311)
    check = library(*point)
    if check is None or not math.isclose(linear.cost(*point), check, rel_tol=1e-9, abs_tol=1e-12):
        return None
    return linear


_PROBE_TOKENS: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class _PiecewisePrice:
    """A price's per-token rates for each range of input tokens (`bisect_left(starts,
    input_tokens)` numbers the range); None where the library prices the calls."""

    starts: tuple[int, ...]  # the size tiers' starts, sorted
    pieces: tuple[_LinearPrice | None, ...]  # one more than starts


@dataclass(frozen=True, slots=True)
class _LinearPrice:
    """USD = base + per-token rates; input includes the cache tokens, output the reasoning."""

    base: float
    input: float  # per uncached input token
    output: float  # per non-reasoning output token
    cache_read: float
    cache_write: float
    reasoning: float

    def cost(self, inp: int, out: int, cache_read: int, cache_write: int, reasoning: int) -> float:
        return (
            self.base
            + (inp - cache_read - cache_write) * self.input
            + cache_read * self.cache_read
            + cache_write * self.cache_write
            + (out - reasoning) * self.output
            + reasoning * self.reasoning
        )


def _seconds_of_day(value: _dt.time) -> int:
    if value.tzinfo is not None:
        value = _dt.datetime.combine(_dt.date(1970, 1, 1), value).astimezone(_dt.UTC).timetz()
    return value.hour * 3600 + value.minute * 60 + value.second


def _time_boundaries(model: ModelInfo) -> tuple[int, ...]:
    """UTC seconds-of-day at which a time-of-day price of `model` starts or ends."""
    constraints: list[object] = []
    if isinstance(model.prices, list):
        constraints.extend(price.constraint for price in model.prices)
    constraints.extend(variant.constraint for variant in model.price_variants or ())
    points: set[int] = set()
    for constraint in constraints:
        if isinstance(constraint, TimeOfDateConstraint):
            points.add(_seconds_of_day(constraint.start_time))
            points.add(_seconds_of_day(constraint.end_time))
    return tuple(sorted(points))
