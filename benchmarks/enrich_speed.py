"""Per-call cost of the enrichers (user agent, GeoIP, pricing, privacy).

Usage: python benchmarks/enrich_speed.py [--n 20000] [--geoip-dir DIR]

"cold" = every input is new (cache misses only); "warm" = realistic repetition: inputs drawn
from a Zipf-like distribution over a small set of distinct values, as in a stream of spans
from a few hundred clients. Import and construction costs are measured too (imports in a
fresh interpreter). Numbers are microseconds per call (best of 3 runs).
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from session_bridge.enrich.geoip import GeoIpLookup
from session_bridge.enrich.pricing import PriceBook
from session_bridge.enrich.privacy import UserIdPseudonymizer, truncate_ip
from session_bridge.enrich.useragent import UserAgentParser
from session_bridge.model import LlmUsage

T = TypeVar("T")

DEFAULT_GEOIP_DIR = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "geoip"

UA_TEMPLATES = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{a}.0.{b}.{c} Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{a}.0) Gecko/20100101 Firefox/{a}.{b}",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{a}.0.0.0 Safari/537.36 Edg/{a}.0.{b}.{c}",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/{a}.{b} Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{a}.0.{b}.{c} Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS {a}_{b} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/{a}.{b} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS {a}_{b} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/{a}.{b} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android {b}; SM-S9{c}B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{a}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android {b}; SM-X7{c}) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{a}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.{b}; +http://www.google.com/bot.html)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.{b}; "
    "+https://openai.com/gptbot)",
    "OTel-OTLP-Exporter-Python/1.{a}.{b}",
    "OTel-OTLP-Exporter-Java/1.{a}.{b}",
    "OTel-OTLP-Exporter-Go/1.{a}.{b} grpc-go/1.{c}.0",
    "grpc-python/1.{a}.{b} grpc-c/{c}.1.0 (linux; chttp2)",
    "python-httpx/0.{a}.{b}",
    "OpenAI/Python 1.{a}.{b}",
    "Anthropic/Python 0.{a}.{b}",
    "curl/8.{a}.{b}",
    "OpenTelemetry Collector Contrib/0.{a}.{b} (linux/amd64)",
]

MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4-5-20250929"),
    ("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("gcp.gen_ai", "gemini-2.5-flash"),
    ("x_ai", "grok-3"),
    ("deepseek", "deepseek-chat"),
    ("azure.ai.openai", "gpt-4o"),
]


def unique_user_agents(n: int, rng: random.Random) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        template = rng.choice(UA_TEMPLATES)
        out.add(
            template.format(a=rng.randint(10, 140), b=rng.randint(0, 9999), c=rng.randint(0, 999))
        )
    return list(out)


def unique_ips(geo: GeoIpLookup, n: int, rng: random.Random, geoip_dir: Path) -> list[str]:
    """Addresses inside the test databases' networks (hits) mixed with random global ones."""
    import maxminddb

    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    with maxminddb.open_database(geoip_dir / "GeoIP2-City-Test.mmdb") as reader:
        for network, _ in reader:
            networks.append(network)
    out: set[str] = set()
    while len(out) < n:
        if rng.random() < 0.7:
            network = rng.choice(networks)
            offset = rng.randrange(network.num_addresses)
            out.add(str(network.network_address + offset))
        else:
            out.add(str(ipaddress.IPv4Address(rng.getrandbits(32))))
    return list(out)


def zipf_draws(values: Sequence[T], n: int, rng: random.Random, s: float = 1.1) -> list[T]:
    weights = [1.0 / (rank + 1) ** s for rank in range(len(values))]
    return rng.choices(list(values), weights=weights, k=n)


def per_call_us(fn: Callable[[T], object], inputs: Sequence[T], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for item in inputs:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return best / len(inputs) * 1e6


def import_ms(module: str) -> float:
    code = (
        "import time; t = time.perf_counter(); "
        f"import {module}; print((time.perf_counter() - t) * 1000)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000, help="calls per measurement")
    parser.add_argument("--geoip-dir", type=Path, default=DEFAULT_GEOIP_DIR)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    n: int = args.n
    rng = random.Random(args.seed)

    print(f"python {sys.version.split()[0]}, n={n} calls per row, best of 3\n")
    print("import (fresh interpreter, ms)")
    for module in ("ua_parser", "maxminddb", "genai_prices", "session_bridge.enrich.pricing"):
        print(f"  {module:34s} {import_ms(module):8.1f}")

    print("\nconstruction (ms)")
    t = time.perf_counter()
    uap = UserAgentParser(cache_size=4096)
    print(f"  {'UserAgentParser()':34s} {(time.perf_counter() - t) * 1000:8.1f}")
    t = time.perf_counter()
    geo = GeoIpLookup(
        [args.geoip_dir / "GeoIP2-City-Test.mmdb", args.geoip_dir / "GeoLite2-Country-Test.mmdb"]
    )
    print(f"  {'GeoIpLookup(city, country)':34s} {(time.perf_counter() - t) * 1000:8.1f}")
    t = time.perf_counter()
    book = PriceBook()
    print(f"  {'PriceBook()':34s} {(time.perf_counter() - t) * 1000:8.1f}")
    t = time.perf_counter()
    book.cost(LlmUsage("openai", "gpt-4o", 1, 1), time.time_ns())
    print(f"  {'PriceBook first cost() call':34s} {(time.perf_counter() - t) * 1000:8.1f}")

    rows: list[tuple[str, float, float]] = []

    # user agents
    cold_uas = unique_user_agents(n, rng)
    cold_parser = UserAgentParser(cache_size=0)
    cold = per_call_us(cold_parser.parse, cold_uas)
    warm_uas = zipf_draws(unique_user_agents(500, rng), n, rng)
    for ua in warm_uas:
        uap.parse(ua)
    warm = per_call_us(uap.parse, warm_uas)
    rows.append(("UserAgentParser.parse", cold, warm))

    # geoip
    cold_ips = unique_ips(geo, n, rng, args.geoip_dir)
    cold_geo = GeoIpLookup([args.geoip_dir / "GeoIP2-City-Test.mmdb"], cache_size=0)
    cold_city = per_call_us(cold_geo.lookup, cold_ips)
    cold_geo2 = GeoIpLookup(
        [args.geoip_dir / "GeoIP2-City-Test.mmdb", args.geoip_dir / "GeoLite2-Country-Test.mmdb"],
        cache_size=0,
    )
    cold_two = per_call_us(cold_geo2.lookup, cold_ips)
    warm_ips = zipf_draws(unique_ips(geo, 300, rng, args.geoip_dir), n, rng)
    for ip in warm_ips:
        geo.lookup(ip)
    warm = per_call_us(geo.lookup, warm_ips)
    rows.append(("GeoIpLookup.lookup (City DB)", cold_city, float("nan")))
    rows.append(("GeoIpLookup.lookup (City+Country)", cold_two, warm))

    # pricing
    start_ns = int(datetime(2025, 10, 1, tzinfo=UTC).timestamp()) * 1_000_000_000
    cold_calls: list[tuple[LlmUsage, int]] = []
    for i in range(n):
        provider, model = rng.choice(MODELS)
        inp = rng.randint(100, 50_000)
        cold_calls.append(
            (
                LlmUsage(
                    provider,
                    model,
                    input_tokens=inp,
                    output_tokens=rng.randint(1, 4000),
                    cache_read_tokens=rng.choice([0, 0, inp // 2]),
                ),
                start_ns + i * 1_000_000_000,
            )
        )
    cold_book = PriceBook(cache_size=0)
    cold = per_call_us(lambda c: cold_book.cost(c[0], c[1]), cold_calls)
    distinct = cold_calls[:200]
    warm_calls = zipf_draws(distinct, n, rng)
    for call in warm_calls:
        book.cost(*call)
    warm = per_call_us(lambda c: book.cost(c[0], c[1]), warm_calls)
    rows.append(("PriceBook.cost", cold, warm))
    reported = LlmUsage("openai", "gpt-4o", 10, 10, reported_cost_usd=0.01)
    rows.append(
        (
            "PriceBook.cost (reported cost)",
            float("nan"),
            per_call_us(lambda _: book.cost(reported, start_ns), range(n)),
        )
    )

    # privacy
    pseudonymize = UserIdPseudonymizer(b"k" * 32)
    user_ids = [f"user-{i}@example.com" for i in range(n)]
    rows.append(("UserIdPseudonymizer()", per_call_us(pseudonymize, user_ids), float("nan")))
    rows.append(("truncate_ip", per_call_us(truncate_ip, cold_ips), float("nan")))

    print(f"\n{'enricher':36s} {'cold us/call':>13s} {'warm us/call':>13s}")
    for name, cold_us, warm_us in rows:
        cold_s = "-" if cold_us != cold_us else f"{cold_us:.2f}"
        warm_s = "-" if warm_us != warm_us else f"{warm_us:.2f}"
        print(f"{name:36s} {cold_s:>13s} {warm_s:>13s}")
    print(
        "\ncache stats:",
        f"ua {uap.cache_info()}",
        f"geo {geo.cache_info()}",
        f"price {book.cache_info()['price']}",
        sep="\n  ",
    )


if __name__ == "__main__":
    main()
