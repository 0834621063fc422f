from __future__ import annotations

import pytest

from session_bridge.enrich.useragent import DEVICE_TYPES, UserAgentParser

# (user agent, device_type, os, browser, browser_version or None = not checked)
CASES: list[tuple[str, str, str | None, str | None, str | None]] = [
    # desktop browsers
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "desktop",
        "Windows",
        "Chrome",
        "131.0.0.0",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "desktop",
        "Windows",
        "Firefox",
        "133.0",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
        "desktop",
        "Windows",
        "Edge",
        "131.0.2903.86",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.2 Safari/605.1.15",
        "desktop",
        "Mac OS X",
        "Safari",
        "18.2",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "desktop",
        "Mac OS X",
        "Chrome",
        None,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0",
        "desktop",
        "Mac OS X",
        "Firefox",
        "133.0",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "desktop",
        "Linux",
        "Chrome",
        None,
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "desktop",
        "Ubuntu",
        "Firefox",
        None,
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "desktop",
        "Chrome OS",
        "Chrome",
        None,
    ),
    # phones and tablets
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1",
        "mobile",
        "iOS",
        "Mobile Safari",
        "18.2",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        "mobile",
        "iOS",
        "Chrome Mobile iOS",
        "131.0.6778.73",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.2 Mobile/15E148 Safari/604.1",
        "tablet",
        "iOS",
        "Mobile Safari",
        None,
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        "mobile",
        "Android",
        "Chrome Mobile",
        None,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
        "mobile",
        "Android",
        "Samsung Internet",
        "23.0",
    ),
    (
        "Mozilla/5.0 (Linux; Android 15; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/128.0.0.0 Safari/537.36",
        "tablet",
        "Android",
        "Chrome",
        None,
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; Lenovo TB-X606F) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "tablet",
        "Android",
        "Chrome",
        None,
    ),
    (
        "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Silk/131.3.1 like Chrome/131.0.6778.135 Safari/537.36",
        "tablet",
        "Android",
        "Amazon Silk",
        None,
    ),
    # TVs and consoles
    (
        "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36",
        "tv",
        "Tizen",
        "Samsung Internet",
        "4.0",
    ),
    (
        "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/94.0.4606.128 Safari/537.36 WebAppManager",
        "tv",
        "Web0S",
        "Chrome",
        None,
    ),
    (
        # ua-parser's device brand for BRAVIA is Generic_Android_Tablet: tv must win
        "Mozilla/5.0 (Linux; Android 9; BRAVIA 4K GB ATV3 Build/PTT1.190515.001.S52) "
        "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "tv",
        "Android",
        "Chrome",
        None,
    ),
    (
        # Fire TV stick: ua-parser says a generic Android phone
        "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        "tv",
        "Android",
        "Chrome Mobile",
        None,
    ),
    ("Roku/DVP-9.10 (519.10E04111A)", "tv", "Roku", "Roku", None),
    (
        "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/13.0 Safari/605.1.15",
        "console",
        None,
        "Safari",
        None,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox Series X) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/48.0.2564.82 Safari/537.36 Edge/20.02",
        "console",
        "Windows",
        "Edge",
        None,
    ),
    (
        "Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/606.4 (KHTML, like Gecko) "
        "NF/6.0.1.15.4 NintendoBrowser/5.1.0.20393",
        "console",
        None,
        None,
        None,
    ),
    # crawlers
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "bot",
        None,
        "Googlebot",
        "2.1",
    ),
    (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.6778.139 Mobile Safari/537.36 "
        "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "bot",
        "Android",
        "Googlebot",
        "2.1",
    ),
    (
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "bot",
        None,
        "bingbot",
        "2.0",
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
        "+https://openai.com/gptbot)",
        "bot",
        None,
        "GPTBot",
        "1.2",
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; "
        "+claudebot@anthropic.com)",
        "bot",
        None,
        "ClaudeBot",
        "1.0",
    ),
    (
        # ua-parser alone names this one "com/bot"
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; "
        "+https://openai.com/bot",
        "bot",
        None,
        "ChatGPT-User",
        "1.0",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/131.0.0.0 Safari/537.36",
        "bot",
        "Mac OS X",
        "HeadlessChrome",
        None,
    ),
    # tools, HTTP/gRPC libraries, OTel exporters, LLM SDKs
    ("curl/8.5.0", "unknown", None, "curl", "8.5.0"),
    ("Wget/1.21.4", "unknown", None, "Wget", "1.21.4"),
    ("python-httpx/0.28.1", "unknown", None, "python-httpx", "0.28.1"),
    ("python-requests/2.32.3", "unknown", None, "python-requests", "2.32.3"),
    ("Python/3.11 aiohttp/3.10.5", "unknown", None, "aiohttp", "3.10.5"),
    (
        "grpc-python/1.68.1 grpc-c/44.1.0 (linux; chttp2)",
        "unknown",
        "Linux",
        "grpc-python",
        "1.68.1",
    ),
    ("grpc-java-netty/1.68.1", "unknown", None, "grpc-java-netty", "1.68.1"),
    ("grpc-go/1.68.0", "unknown", None, "grpc-go", "1.68.0"),
    ("Go-http-client/1.1", "unknown", None, "Go-http-client", "1.1"),
    ("Java/17.0.2", "unknown", None, "Java", "17.0.2"),  # ua-parser: "Spider"
    ("OTel-OTLP-Exporter-Python/1.45.2", "unknown", None, "OTel OTLP Exporter Python", "1.45.2"),
    # ua-parser alone reads this as browser "Java" 44.1
    ("OTel-OTLP-Exporter-Java/1.44.1", "unknown", None, "OTel OTLP Exporter Java", "1.44.1"),
    (
        "OTel-OTLP-Exporter-JavaScript/0.57.0",
        "unknown",
        None,
        "OTel OTLP Exporter JavaScript",
        "0.57.0",
    ),
    ("OTel-OTLP-Exporter-Go/1.33.0", "unknown", None, "OTel OTLP Exporter Go", "1.33.0"),
    ("OTel-OTLP-Exporter-Dotnet/1.10.0", "unknown", None, "OTel OTLP Exporter Dotnet", "1.10.0"),
    (
        "OTel-OTLP-Exporter-Python/1.45.2 grpc-python/1.68.1 grpc-c/44.1.0 (linux; chttp2)",
        "unknown",
        "Linux",
        "OTel OTLP Exporter Python",
        "1.45.2",
    ),
    (
        "OpenTelemetry Collector Contrib/0.116.0 (linux/amd64)",
        "unknown",
        "Linux",
        "OpenTelemetry Collector Contrib",
        "0.116.0",
    ),
    ("OpenAI/Python 1.58.1", "unknown", None, "OpenAI Python SDK", "1.58.1"),
    ("AsyncOpenAI/Python 1.58.1", "unknown", None, "OpenAI Python SDK", "1.58.1"),
    ("Anthropic/Python 0.42.0", "unknown", None, "Anthropic Python SDK", "0.42.0"),
    ("OpenAI/JS 4.77.0", "unknown", None, "OpenAI JS SDK", "4.77.0"),
    # nothing to go on
    ("", "unknown", None, None, None),
    ("garbage ???", "unknown", None, None, None),
]


@pytest.mark.parametrize(("ua", "device_type", "os", "browser", "version"), CASES)
def test_parse_table(
    ua_parser: UserAgentParser,
    ua: str,
    device_type: str,
    os: str | None,
    browser: str | None,
    version: str | None,
) -> None:
    info = ua_parser.parse(ua)
    assert (info.device_type, info.os, info.browser) == (device_type, os, browser)
    if version is not None:
        assert info.browser_version == version
    assert info.user_agent == ua
    assert info.ip is None
    assert info.device_type in DEVICE_TYPES


def test_every_device_type_is_covered() -> None:
    assert {case[1] for case in CASES} == set(DEVICE_TYPES)


def test_results_are_cached_and_independent(ua_parser: UserAgentParser) -> None:
    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0 cache-test"
    first = ua_parser.parse(ua)
    hits = ua_parser.cache_info().hits
    first.ip = "203.0.113.9"  # mutating a result must not leak into the cache
    first.browser = "changed"
    second = ua_parser.parse(ua)
    assert ua_parser.cache_info().hits == hits + 1
    assert second is not first
    assert (second.ip, second.browser, second.device_type) == (None, "Firefox", "desktop")


def test_cache_is_bounded() -> None:
    parser = UserAgentParser(cache_size=2)
    for i in range(5):
        parser.parse(f"curl/8.{i}.0")
    assert parser.cache_info().currsize == 2
    assert parser.parse("curl/8.4.0").browser_version == "8.4.0"


def test_overlong_user_agent_is_truncated_for_parsing(ua_parser: UserAgentParser) -> None:
    ua = "curl/8.5.0 " + "x" * 5000
    info = ua_parser.parse(ua)
    assert info.user_agent == ua
    assert (info.browser, info.device_type) == ("curl", "unknown")


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        UserAgentParser(cache_size=-1)
    with pytest.raises(ValueError):
        UserAgentParser(max_length=0)
