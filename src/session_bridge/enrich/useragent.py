"""User-agent parsing: `user_agent.original` -> `ClientInfo` (device type, OS, browser).

Parsing uses `ua-parser` 1.x with the bundled `ua-parser-builtins` regexes and the
`ua-parser-rs` (Rust) accelerator (`RegexResolver`). ua-parser does not classify form
factors, and it does not know the HTTP/gRPC clients that OTLP and LLM traffic comes
from (it returns nothing for `python-httpx`, calls `OTel-OTLP-Exporter-Java/1.44` "Java
44.1" and flags `Java/17` as a crawler), so this module adds:

1. **Known non-browser agents** (`_KNOWN_AGENTS`, checked before ua-parser, first match
   wins): OpenTelemetry OTLP exporters and the Collector, LLM SDKs (OpenAI, Anthropic),
   HTTP/gRPC client libraries, command-line tools, and AI crawlers whose names ua-parser
   mangles. They get a readable `browser` name (e.g. "OTel OTLP Exporter Python",
   "OpenAI Python SDK", "python-httpx"), `browser_version` from the agent, `os` from
   ua-parser's OS rules (e.g. "(linux; chttp2)" -> Linux), and device_type "unknown"
   (libraries/SDKs/tools) or "bot" (crawlers).

2. **device_type rules** for everything else (first match wins). `ua` is the raw string,
   `dev`/`os` are ua-parser's device and OS results:

   1. bot -- dev.family == "Spider", or ua matches `\\bbot\\b`, `bot/`, `crawler`,
      `spider`, `slurp` or `headless` (case-insensitive).
   2. tv -- ua matches smart-tv, smarttv, googletv, android tv, appletv, crkey, bravia,
      web0s/webos, hbbtv, netcast, roku, viera, aquos, vidaa (case-insensitive), or `TV` as
      a word or a Fire TV model `AFTxx` (case-sensitive); or os.family in {ATV OS X,
      Chromecast Linux, Roku, Web0S, webOS, tvOS}; or dev.brand == "Generic_Inettv".
   3. console -- ua matches playstation, xbox or nintendo.
   4. tablet -- dev.family == "iPad" or starts with "Kindle", dev.brand ==
      "Generic_Android_Tablet", or ua matches `tablet`; or os.family == "Android", ua starts
      with "Mozilla/" and has no "Mobi" (browsers on Android tablets omit "Mobile").
   5. mobile -- dev.family in {iPhone, iPod, iOS-Device, Generic Smartphone}, os.family in
      {iOS, Android, Windows Phone, BlackBerry OS, KaiOS, Tizen, HarmonyOS, ...}, or ua
      contains "Mobi".
   6. desktop -- ua starts with "Mozilla/" or "Opera/" and os.family in {Windows, Mac OS X,
      Linux, Ubuntu, Debian, Fedora, Chrome OS, FreeBSD, ...}.
   7. unknown -- anything else (the empty string, unrecognised tools, library/SDK agents).

   Smartwatches count as "mobile" (no "wearable" value is produced); desktop-mode iPads
   ("Macintosh" UA) are indistinguishable from Macs and count as "desktop".

`ClientInfo.os` is the OS family name only ("Windows", "iOS", "Mac OS X"); ua-parser's
OS version is not kept (ClientInfo has no field for it). `browser_version` joins the
non-empty version parts with "." (e.g. "131.0.6778").

Results are cached per parser instance in a bounded LRU (`functools.lru_cache`), keyed by
the user agent (truncated to `max_length` characters for parsing). The cache holds
immutable tuples; every `parse()` call returns a fresh `ClientInfo`.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from ua_parser import Domain, load_lazy_builtins
from ua_parser.regex import Resolver as RegexResolver

from session_bridge.model import ClientInfo

__all__ = ["DEVICE_TYPES", "UserAgentParser"]

DEVICE_TYPES: Final = ("desktop", "mobile", "tablet", "tv", "console", "bot", "unknown")

# (device_type, os, browser, browser_version) -- the cached, immutable part of a result.
_Parsed = tuple[str, str | None, str | None, str | None]

# Known non-browser agents: (pattern, browser name template, device_type).
# `{x}` in the name is replaced by the named group `x`; the version is group `v`.
_V = r"(?:[/ ](?P<v>v?\d[\w.+-]*))?"
_KNOWN_AGENTS: Final[tuple[tuple[re.Pattern[str], str, str], ...]] = tuple(
    (re.compile(pattern), name, device_type)
    for pattern, name, device_type in (
        # OpenTelemetry SDK exporters: OTel-OTLP-Exporter-{Python,Java,JavaScript,Go,Dotnet,...}
        (r"^OTel-OTLP-Exporter-(?P<x>[A-Za-z+#]+)" + _V, "OTel OTLP Exporter {x}", "unknown"),
        (
            r"^OpenTelemetry Collector(?P<x>(?: [A-Za-z][\w-]*)*)" + _V,
            "OpenTelemetry Collector{x}",
            "unknown",
        ),
        (r"^(?P<x>otelcol[\w-]*)" + _V, "{x}", "unknown"),
        # LLM SDKs (the Async* clients send their own prefix)
        (r"^(?:Async)?OpenAI/Python" + _V, "OpenAI Python SDK", "unknown"),
        (r"^(?:Async)?OpenAI/(?:JS|Node)" + _V, "OpenAI JS SDK", "unknown"),
        (r"^(?:Async)?Anthropic/Python" + _V, "Anthropic Python SDK", "unknown"),
        (r"^(?:Async)?Anthropic/(?:JS|Node)" + _V, "Anthropic JS SDK", "unknown"),
        # HTTP / gRPC client libraries and tools, named by their own token
        (
            r"^(?P<x>python-httpx|python-requests|python-urllib3|Python-urllib|grpc-[a-z0-9+.-]+"
            r"|curl|Wget|Go-http-client|okhttp|axios|node-fetch|undici|PostmanRuntime|insomnia"
            r"|Apache-HttpClient|HTTPie|libcurl|Java|Dart|reqwest|RestSharp|GuzzleHttp"
            r"|Faraday|Ruby|aiohttp)(?=[/ ;(]|$)" + _V,
            "{x}",
            "unknown",
        ),
        (r"^Python/[\d.]+ aiohttp" + _V, "aiohttp", "unknown"),
        # AI crawlers / fetchers (ua-parser names some of them wrongly, e.g. "com/bot")
        (
            r"(?P<x>GPTBot|ChatGPT-User|OAI-SearchBot|ClaudeBot|Claude-User|Claude-SearchBot"
            r"|Claude-Web|anthropic-ai|PerplexityBot|Perplexity-User|Google-Extended"
            r"|Google-CloudVertexBot|Bytespider|CCBot|Amazonbot|Applebot-Extended|Applebot"
            r"|meta-externalagent|meta-externalfetcher|DuckAssistBot|MistralAI-User|cohere-ai)"
            r"(?:/(?P<v>[\d.]+))?",
            "{x}",
            "bot",
        ),
    )
)

# Substring tokens are matched against the lowercased UA (much faster than case-insensitive
# regex alternations); the few word-boundary rules use small regexes behind a substring test.
_BOT_TOKENS: Final = ("bot/", "crawler", "spider", "slurp", "headless")
_BOT_WORD_RE: Final = re.compile(r"\bbot\b")
_TV_TOKENS: Final = (
    "smart-tv", "smarttv", "googletv", "android tv", "androidtv", "appletv", "apple tv",
    "crkey", "bravia", "web0s", "webos", "hbbtv", "netcast", "roku", "viera", "aquos", "vidaa",
    "philipstv",
)  # fmt: skip
_TV_WORD_RE: Final = re.compile(r"\bTV\b")  # case-sensitive
_FIRE_TV_RE: Final = re.compile(r"\bAFT[A-Z0-9]{1,6}\b")  # Amazon Fire TV models (AFTMM, ...)
_TV_OS: Final = frozenset({"ATV OS X", "Chromecast Linux", "Roku", "Web0S", "webOS", "tvOS"})
_CONSOLE_TOKENS: Final = ("playstation", "xbox", "nintendo")
_MOBILE_DEVICES: Final = frozenset({"iPhone", "iPod", "iOS-Device", "Generic Smartphone"})
_MOBILE_OS: Final = frozenset(
    {
        "iOS",
        "Android",
        "Windows Phone",
        "Windows Mobile",
        "BlackBerry OS",
        "BlackBerry Tablet OS",
        "KaiOS",
        "Firefox OS",
        "Symbian OS",
        "Symbian^3",
        "HarmonyOS",
        "Tizen",
        "Sailfish",
    }
)
_DESKTOP_OS: Final = frozenset(
    {
        "Windows",
        "Mac OS X",
        "Linux",
        "Ubuntu",
        "Debian",
        "Fedora",
        "Red Hat",
        "SUSE",
        "Mint",
        "Arch Linux",
        "Gentoo",
        "CentOS",
        "Chrome OS",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
    }
)


def _join_version(*parts: str | None) -> str | None:
    out: list[str] = []
    for part in parts:
        if part is None or part == "":
            break
        out.append(part)
    return ".".join(out) if out else None


class UserAgentParser:
    """Parse user-agent strings into `ClientInfo` (see the module docstring for the rules).

    Building the parser loads ua-parser's regexes into the Rust matcher (~0.1 s), so
    create one per process and share it; `parse` is thread-safe.
    """

    def __init__(self, cache_size: int = 4096, max_length: int = 1024) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        if max_length <= 0:
            raise ValueError(f"max_length must be > 0, got {max_length}")
        self._max_length = max_length
        self._resolver = RegexResolver(load_lazy_builtins())
        self._cached = functools.lru_cache(maxsize=cache_size)(self._parse_uncached)

    def parse(self, user_agent: str) -> ClientInfo:
        """Parse one user agent; `ip` is left None and `user_agent` is the input."""
        key = user_agent if len(user_agent) <= self._max_length else user_agent[: self._max_length]
        device_type, os, browser, version = self._cached(key)
        return ClientInfo(
            ip=None,
            user_agent=user_agent,
            device_type=device_type,
            os=os,
            browser=browser,
            browser_version=version,
        )

    def cache_info(self) -> functools._CacheInfo:
        """Hit/miss statistics of the result cache."""
        return self._cached.cache_info()

    def _parse_uncached(self, ua: str) -> _Parsed:
        ua = ua.strip()
        if not ua:
            return ("unknown", None, None, None)

        for pattern, name, device_type in _KNOWN_AGENTS:
            if match := pattern.search(ua):
                groups = match.groupdict()
                browser = name.replace("{x}", groups.get("x") or "").strip()
                os_result = self._resolver(ua, Domain.OS).os
                return (
                    device_type,
                    os_result.family if os_result else None,
                    browser,
                    groups.get("v"),
                )

        result = self._resolver(ua, Domain.ALL)
        agent, os_result, device = result.user_agent, result.os, result.device
        os_family = os_result.family if os_result else None
        agent_family = agent.family if agent else None
        version = (
            _join_version(agent.major, agent.minor, agent.patch, agent.patch_minor)
            if agent
            else None
        )
        device_family = device.family if device else None
        device_brand = device.brand if device else None
        return (
            _device_type(ua, os_family, device_family, device_brand),
            os_family,
            agent_family,
            version,
        )


def _device_type(
    ua: str, os_family: str | None, device_family: str | None, device_brand: str | None
) -> str:
    """Apply the rule table of the module docstring (first match wins)."""
    low = ua.lower()
    if (
        device_family == "Spider"
        or any(token in low for token in _BOT_TOKENS)
        or ("bot" in low and _BOT_WORD_RE.search(low))
    ):
        return "bot"
    if (
        any(token in low for token in _TV_TOKENS)
        or ("TV" in ua and _TV_WORD_RE.search(ua))
        or ("AFT" in ua and _FIRE_TV_RE.search(ua))
        or os_family in _TV_OS
        or device_brand == "Generic_Inettv"
    ):
        return "tv"
    if any(token in low for token in _CONSOLE_TOKENS):
        return "console"
    is_browser = ua.startswith(("Mozilla/", "Opera/"))
    if (
        device_family == "iPad"
        or (device_family is not None and device_family.startswith("Kindle"))
        or device_brand == "Generic_Android_Tablet"
        or "tablet" in low
        or (os_family == "Android" and is_browser and "Mobi" not in ua)
    ):
        return "tablet"
    if device_family in _MOBILE_DEVICES or os_family in _MOBILE_OS or "Mobi" in ua:
        return "mobile"
    if is_browser and os_family in _DESKTOP_OS:
        return "desktop"
    return "unknown"
