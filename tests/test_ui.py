"""The sessions page in a real headless chromium (Selenium, Debian's chromedriver), against
bridges fed through the official OTLP exporter: the list (filters, sort, keyset pages, a
shared link, new sessions without a reload), a session (rollup, span tree and waterfall,
input and output as a chat, a tool call, the cost as sent), users and the overview (charts
from the vendored uPlot), the key flow, and spans full of markup that never executes."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from collections.abc import Iterator
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from tests import agent_scenario as scenario
from tests.browser import chromium, one, texts, wait_for
from tests.conftest import REPO, RunningBridge, sdk_provider
from tests.test_api_auth import (
    ACME_SECRET,
    two_project_bridge,
)

FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
VENDORED = ("vendor/uplot/uPlot.iife.min.js", "vendor/uplot/uPlot.min.css")

QUESTION = "What's the weather in Paris, in °C?"
ANSWER = "It is 18 °C and sunny in Paris."
CHAT_IO: dict[str, Any] = {
    "gen_ai.input.messages": json.dumps(
        [{"role": "user", "parts": [{"type": "text", "content": QUESTION}]}]
    ),
    "gen_ai.output.messages": json.dumps(
        [{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}]}]
    ),
    "gen_ai.usage.cost": 0.0000105,
}
CHAT = scenario.Session(
    "chat-1",
    5_400_000,
    [
        scenario.agent(
            "assistant",
            0,
            2_000,
            [
                scenario.chat(
                    10,
                    1_500,
                    (12_345, 678),
                    "gpt-4o-mini",
                    **CHAT_IO,
                ),
                scenario.S(
                    "evaluate answer",
                    {"gen_ai.operation.name": "evaluate"},
                    1_510,
                    1_520,
                    events=[
                        (
                            "gen_ai.evaluation.result",
                            {
                                "gen_ai.evaluation.name": "relevance",
                                "gen_ai.evaluation.score.value": 0.92,
                                "gen_ai.evaluation.score.label": "relevant",
                                "gen_ai.evaluation.explanation": "answers the question asked",
                            },
                        )
                    ],
                ),
                scenario.tool(
                    "get_weather",
                    1_600,
                    1_700,
                    "call-w",
                    **{
                        "gen_ai.tool.call.arguments": '{"city": "Paris", "unit": "C"}',
                        "gen_ai.tool.call.result": '{"temperature": 18}',
                    },
                ),
            ],
        )
    ],
    user_id="u-3",
)
ALL = [
    "staging-1",
    "chat-1",
    "support-1",
    *(f"baseline-{i}" for i in range(5, -1, -1)),
]  # newest first


@pytest.fixture(scope="module")
def page_bridge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBridge]:
    with scenario.populated_bridge(request, tmp_path_factory.mktemp("ui"), "sqlite") as bridge:
        provider = sdk_provider(bridge, "http", scenario.RESOURCE)
        scenario.send(provider, [CHAT])
        provider.shutdown()
        yield bridge


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


def pages(first: int, last: int, total: int) -> str:
    return f"{first}\u2013{last} of {total}"  # an en dash, as a person writes a range


def open_page(driver: webdriver.Chrome, url: str, view: str) -> None:
    driver.get(url)
    wait_ready(driver, view)


def wait_ready(driver: webdriver.Chrome, view: str) -> None:
    wait_for(driver, lambda d: d.execute_script("return document.body.dataset.ready") == view)


def row_ids(driver: webdriver.Chrome) -> list[str]:
    ids: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#sessions tbody tr')].map((r) => r.dataset.id)"
    )
    return ids


def wait_rows(driver: webdriver.Chrome, expected: list[str]) -> None:
    wait_for(driver, lambda d: row_ids(d) == expected)


def query_of(driver: webdriver.Chrome) -> dict[str, list[str]]:
    return parse_qs(urlparse(driver.current_url).query)


def browser_log(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """The console entries since the last call (selenium's get_log has no annotations)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return entries


def browser_errors(driver: webdriver.Chrome) -> list[str]:
    return [
        e["message"]
        for e in browser_log(driver)
        if e["level"] == "SEVERE" or "Content Security Policy" in e["message"]
    ]


# -- served from the package ---------------------------------------------------------------


def test_root_redirects_to_the_page_keeping_the_link(page_bridge: RunningBridge) -> None:
    response = page_bridge.client.get("/")
    assert response.status_code == 307 and response.headers["location"] == "/ui/"
    shared = page_bridge.client.get("/?session=support-1&span=ab")
    assert shared.headers["location"] == "/ui/?session=support-1&span=ab"
    page = page_bridge.client.get("/ui/")
    assert page.status_code == 200 and '<table id="sessions">' in page.text


def test_the_page_forbids_inline_scripts(page_bridge: RunningBridge) -> None:
    for path in ("/ui/", "/ui/app.js", "/"):
        policy = page_bridge.client.get(path).headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == "'self'", path
        assert directives["default-src"] == "'none'" and directives["style-src"] == "'self'"
        assert "unsafe" not in policy
    page = page_bridge.client.get("/ui/").text
    assert re.findall(r"<script[^>]*>", page) == [
        '<script src="vendor/uplot/uPlot.iife.min.js">',
        '<script src="app.js">',
    ]
    assert re.search(r"<[^>]*\son\w+\s*=", page) is None  # no inline event handler
    assert "style=" not in page


@pytest.mark.parametrize(("name", "media_type"), FILES.items())
def test_static_files_are_served_and_need_nothing_from_elsewhere(
    page_bridge: RunningBridge, name: str, media_type: str
) -> None:
    response = page_bridge.client.get(f"/ui/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    shipped = resources.files("session_bridge").joinpath("static", name).read_text(encoding="utf-8")
    assert response.text == shipped
    assert "http://" not in shipped and "https://" not in shipped and "//cdn" not in shipped


def test_the_charting_library_ships_in_the_package_with_its_licence(
    page_bridge: RunningBridge,
) -> None:
    static = resources.files("session_bridge").joinpath("static")
    licence = static.joinpath("vendor/uplot/LICENSE").read_text()
    assert licence.startswith("The MIT License") and "Leon Sorokin" in licence
    assert "1.6.32" in static.joinpath("vendor/uplot/VERSION").read_text()
    for name in VENDORED:
        response = page_bridge.client.get(f"/ui/{name}")
        assert response.status_code == 200
        assert response.content == static.joinpath(name).read_bytes()
    script = static.joinpath(VENDORED[0]).read_text()
    assert script.startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    assert "fetch(" not in script and "XMLHttpRequest" not in script and "innerHTML" not in script
    # the wheel carries every file of static/: each matches a package-data pattern
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["session_bridge"]
    root = REPO / "src" / "session_bridge"
    for path in (root / "static").rglob("*"):
        if path.is_file():
            relative = path.relative_to(root).as_posix()
            assert any(
                fnmatch.fnmatch(relative, p) and p.count("/") == relative.count("/")
                for p in patterns
            ), relative


def test_the_page_script_inserts_text_never_markup() -> None:
    script = resources.files("session_bridge").joinpath("static", "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "setAttribute(\"on", "srcdoc"):  # fmt: skip
        assert sink not in script, sink
    # the API key lives in this tab's session only, never on disk for the next visitor
    assert 'sessionStorage.setItem("bridge.apikey"' in script
    assert "localStorage" not in script


# -- the sessions list -----------------------------------------------------------------------


def test_list_filters_by_every_field_a_person_asks_about(
    page_bridge: RunningBridge, browser: webdriver.Chrome
) -> None:
    open_page(browser, f"{page_bridge.http_url}/ui/", "sessions")
    assert row_ids(browser) == ALL  # newest first
    assert one(browser, "#page-info").text == pages(1, 9, 9)

    def apply(**fields: str) -> None:
        one(browser, "#clear").click()
        wait_rows(browser, ALL)
        for name, value in fields.items():
            field = one(browser, f"#f-{name}")
            if name in ("from", "to"):  # the date widget is chromium's; its value is the point
                browser.execute_script("arguments[0].value = arguments[1]", field, value)
            elif field.tag_name == "select":
                field.find_element(By.CSS_SELECTOR, f"option[value='{value}']").click()
            else:
                field.send_keys(value)
        one(browser, "#apply").click()

    apply(model="claude-haiku-4-5")
    wait_rows(browser, ["staging-1"])
    assert query_of(browser)["model"] == ["claude-haiku-4-5"]
    apply(user="u-3")
    wait_rows(browser, ["chat-1"])
    apply(env="staging")
    wait_rows(browser, ["staging-1"])
    apply(errors="yes")
    wait_rows(browser, ["support-1"])
    apply(state="active")
    wait_rows(browser, [])
    assert one(browser, "#empty").is_displayed()
    apply(cmin="0.01")
    wait_rows(browser, ["support-1"])
    apply(cmax="0.00002")
    wait_rows(browser, ["staging-1", "chat-1"])
    apply(imin="10000")
    wait_rows(browser, ["chat-1"])
    apply(omax="1")
    wait_rows(browser, ["staging-1"])
    apply(service="agent-worker", provider="anthropic")
    wait_rows(browser, ["staging-1"])
    apply(q="BASELINE-")
    wait_rows(browser, [f"baseline-{i}" for i in range(5, -1, -1)])
    # the scenario's sessions start at 14:13:20 UTC plus a minute each
    apply(**{"from": "2026-09-21T14:15:00", "to": "2026-09-21T14:17:00"})
    wait_rows(browser, ["baseline-3", "baseline-2"])
    assert query_of(browser)["from"][0].startswith("2026-09-21T14:15")

    # the filtered view is a link: opened anew, it shows the same rows and fields
    open_page(browser, browser.current_url, "sessions")
    assert row_ids(browser) == ["baseline-3", "baseline-2"]
    assert str(one(browser, "#f-from").get_attribute("value")).startswith("2026-09-21T14:15")
    assert browser_errors(browser) == []


def test_list_sorts_by_any_column_and_formats_numbers_for_people(
    page_bridge: RunningBridge, browser: webdriver.Chrome
) -> None:
    open_page(browser, f"{page_bridge.http_url}/ui/", "sessions")
    sortable = [
        b.get_attribute("data-sort") for b in browser.find_elements(By.CSS_SELECTOR, "th .sort")
    ]
    assert sortable == [
        "id", "user_id", "environment", "created_at", "duration_ns", "trace_count",
        "total_input_tokens", "total_output_tokens", "estimated_cost_usd", "error_count", "state",
    ]  # fmt: skip
    one(browser, "th [data-sort='estimated_cost_usd']").click()
    wait_for(browser, lambda d: row_ids(d)[0] == "support-1")  # most expensive first
    assert query_of(browser)["sort"] == ["estimated_cost_usd"]
    one(browser, "th [data-sort='estimated_cost_usd']").click()
    wait_for(browser, lambda d: row_ids(d)[:2] == ["chat-1", "staging-1"])
    assert query_of(browser)["asc"] == ["1"]
    cells = {
        r.get_attribute("data-id"): texts(r, "td")
        for r in browser.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")
    }
    assert cells["chat-1"][6:9] == ["12,345", "678", "$0.0000105"]
    assert cells["staging-1"][8] == "$0.000015"
    assert cells["support-1"][4] == "22 s" and cells["chat-1"][4] == "2 s"
    assert cells["baseline-0"][4] == "100 ms" and cells["support-1"][8] == "$0.0136"
    # every column is readable at 1280 px: no horizontal scrolling
    assert browser.execute_script(
        "const w = document.querySelector('.table-wrap'); return w.scrollWidth <= w.clientWidth"
    )
    one(browser, "th [data-sort='trace_count']").click()
    wait_for(browser, lambda d: row_ids(d)[0] == "support-1")
    one(browser, "th [data-sort='user_id']").click()  # text columns start ascending
    wait_for(browser, lambda d: row_ids(d)[-1] == "chat-1")
    assert one(browser, "th [data-sort='user_id']").find_element(By.XPATH, "..").get_attribute(
        "aria-sort"
    ) == ("ascending")


def test_list_pages_by_keyset_and_a_page_is_a_link(
    page_bridge: RunningBridge, browser: webdriver.Chrome
) -> None:
    open_page(browser, f"{page_bridge.http_url}/ui/?size=4", "sessions")
    assert row_ids(browser) == ALL[:4] and one(browser, "#page-info").text == pages(1, 4, 9)
    one(browser, "#next-page").click()
    wait_rows(browser, ALL[4:8])
    assert one(browser, "#page-info").text == pages(5, 8, 9)
    assert query_of(browser)["after"] == [ALL[3]]
    second_page = browser.current_url
    one(browser, "#next-page").click()
    wait_rows(browser, ALL[8:])
    assert not one(browser, "#next-page").is_enabled()
    one(browser, "#prev-page").click()
    wait_rows(browser, ALL[4:8])
    one(browser, "#first-page").click()
    wait_rows(browser, ALL[:4])
    open_page(browser, second_page, "sessions")
    assert row_ids(browser) == ALL[4:8] and one(browser, "#page-info").text == pages(5, 8, 9)


# -- one session -------------------------------------------------------------------------------


def span_rows(driver: webdriver.Chrome) -> list[tuple[str, str]]:
    return [
        (str(r.get_attribute("data-depth")), r.find_element(By.CSS_SELECTOR, ".name").text)
        for r in driver.find_elements(By.CSS_SELECTOR, ".span-row")
    ]


def click_span(driver: webdriver.Chrome, name: str, nth: int = 0) -> None:
    rows = [
        r
        for r in driver.find_elements(By.CSS_SELECTOR, ".span-row")
        if r.find_element(By.CSS_SELECTOR, ".name").text == name
    ]
    rows[nth].click()
    wait_for(driver, lambda d: one(d, "#span-detail .span-title").text == name)


def facts(driver: webdriver.Chrome, selector: str) -> dict[str, str]:
    box = one(driver, selector)
    return dict(zip(texts(box, "dt"), texts(box, "dd"), strict=True))


def test_a_session_shows_its_rollup_and_each_turn_as_a_span_tree(
    page_bridge: RunningBridge, browser: webdriver.Chrome
) -> None:
    open_page(browser, f"{page_bridge.http_url}/ui/", "sessions")
    browser.find_element(By.LINK_TEXT, "support-1").click()
    wait_ready(browser, "session")
    assert query_of(browser)["session"] == ["support-1"]
    rollup = facts(browser, "#rollup")
    assert rollup["User"] == "u-1" and rollup["Environment"] == "production"
    assert rollup["Services"] == "agent-worker" and rollup["Duration"] == "22 s"
    assert rollup["Turns"] == "3" and rollup["Spans"] == "21" and rollup["LLM calls"] == "3"
    assert rollup["Tokens in / out"] == "380 / 60" and rollup["Unpriced calls"] == "0"
    # 0.0125 reported on one call, the two others priced by the bridge
    assert rollup["Cost"] == "$0.0136 1 reported by the sender, 2 estimated by the bridge"
    turns = browser.find_elements(By.CSS_SELECTOR, ".trace")
    assert [t.find_element(By.CSS_SELECTOR, ".turn").text for t in turns] == [
        "Turn 1", "Turn 2", "Turn 3",
    ]  # fmt: skip
    rows = span_rows(browser)
    assert len(rows) == 21
    assert rows[:6] == [
        ("0", "invoke_agent triage"),  # the root span is shown
        ("1", "guardrail pii"),
        ("1", "chat gpt-4o"),
        ("1", "handoff triage -> billing"),
        ("1", "invoke_agent billing"),
        ("2", "chat gpt-4o"),
    ]
    assert rows[-3:] == [
        ("0", "Support agent"),
        ("1", "Refund guard"),
        ("1", "execute_tool lookup_order"),
    ]
    # a subtree folds (its toggle) and unfolds (→ on its row)
    billing = next(
        li
        for li in browser.find_elements(By.CSS_SELECTOR, ".tree li")
        if li.find_element(By.CSS_SELECTOR, ".name").text == "invoke_agent billing"
    )
    billing.find_element(By.CSS_SELECTOR, ".fold-toggle").click()
    wait_for(
        browser,
        lambda d: (
            len([r for r in d.find_elements(By.CSS_SELECTOR, ".span-row") if r.is_displayed()])
            == 21 - 7
        ),
    )
    billing.find_element(By.CSS_SELECTOR, ".span-row").send_keys(Keys.ARROW_RIGHT)
    wait_for(
        browser,
        lambda d: all(r.is_displayed() for r in d.find_elements(By.CSS_SELECTOR, ".span-row")),
    )
    # the waterfall counts from the session's start: turn 3 starts 20 s into 22 s
    bar = turns[2].find_element(By.CSS_SELECTOR, ".bar")
    left = float(str(bar.value_of_css_property("left")).removesuffix("px"))
    track = bar.find_element(By.XPATH, "..").size["width"]
    assert left / track == pytest.approx(20 / 22, abs=0.01)

    click_span(browser, "execute_tool lookup_order")
    tool = facts(browser, "#span-detail .tool")
    assert tool["Tool"] == "lookup_order" and tool["Call id"].startswith("call-1")
    assert json.loads(tool["Arguments"]) == {"order": "A1"}
    assert json.loads(tool["Result"]) == {"status": "shipped"}
    # the selected span is part of the link
    assert query_of(browser)["span"] == [
        one(browser, ".span-row.selected").get_attribute("data-span-id")
    ]
    open_page(browser, browser.current_url, "session")
    wait_for(
        browser, lambda d: one(d, "#span-detail .span-title").text == "execute_tool lookup_order"
    )

    click_span(browser, "execute_tool refund")
    detail = one(browser, "#span-detail")
    assert "RuntimeError: gateway 503 for order 12345" in texts(detail, ".error-message")
    events = one(browser, "#span-detail .events")
    assert events.text.startswith("+") and "exception" in events.text
    # the exception event, with its stack as the SDK recorded it
    assert texts(events, ".error-message") == ["RuntimeError: gateway 503 for order 12345"]
    assert texts(events, ".value") == ["RuntimeError: gateway 503 for order 12345"]

    click_span(browser, "invoke_agent triage")
    parts = {
        s.find_element(By.CSS_SELECTOR, "h4").text: s
        for s in detail.find_elements(By.CSS_SELECTOR, ".part")
    }
    assert json.loads(parts["INPUT"].find_element(By.CSS_SELECTOR, ".value").text) == {
        "query": "refund my order A1"
    }
    assert (
        parts["OUTPUT"].find_element(By.CSS_SELECTOR, ".value").text == "Your refund is on its way"
    )
    attributes = next(v for k, v in parts.items() if k.startswith("ATTRIBUTES"))
    assert facts_table(attributes)["langfuse.release"] == "r-42"
    assert browser_errors(browser) == []


def facts_table(section: WebElement) -> dict[str, str]:
    rows = section.find_elements(By.CSS_SELECTOR, "tr")
    return {
        r.find_element(By.CSS_SELECTOR, "th").text: r.find_element(By.CSS_SELECTOR, "td").text
        for r in rows
    }


def test_a_session_shows_what_was_asked_and_answered_and_what_it_cost(
    page_bridge: RunningBridge, browser: webdriver.Chrome
) -> None:
    open_page(browser, f"{page_bridge.http_url}/ui/?session=chat-1", "session")
    assert facts(browser, "#rollup")["Cost"] == "$0.0000105 reported by the sender"
    assert texts(browser, "#by-model tbody td") == [
        "gpt-4o-mini", "1", "12,345", "678", "$0.0000105", "reported",
    ]  # fmt: skip
    click_span(browser, "chat gpt-4o-mini")
    detail = one(browser, "#span-detail")
    llm = facts(browser, "#span-detail .part .facts")
    assert llm["Model"] == "gpt-4o-mini" and llm["Tokens in / out"] == "12,345 / 678"
    assert llm["Cost"] == "$0.0000105 (reported by the sender)"
    chat = {
        s.find_element(By.CSS_SELECTOR, "h4").text: [
            (
                m.find_element(By.CSS_SELECTOR, ".role").text,
                m.find_element(By.CSS_SELECTOR, ".msg-body").text,
            )
            for m in s.find_elements(By.CSS_SELECTOR, ".msg")
        ]
        for s in detail.find_elements(By.CSS_SELECTOR, ".part")
        if s.find_elements(By.CSS_SELECTOR, ".chat")
    }
    assert chat == {"INPUT": [("USER", QUESTION)], "OUTPUT": [("ASSISTANT", ANSWER)]}
    summary = [
        r.find_element(By.CSS_SELECTOR, ".summary").text
        for r in browser.find_elements(By.CSS_SELECTOR, ".span-row")
    ]
    assert summary[1] == "gpt-4o-mini · 12,345 → 678 tokens · $0.0000105"
    assert summary[2] == "relevance: 0.92"
    assert summary[3] == 'get_weather({"city":"Paris","unit":"C"}) → {"temperature":18}'
    # evaluation scores, where present
    click_span(browser, "evaluate answer")
    assert texts(browser, "#span-detail table.scores tbody td") == [
        "relevance", "0.92", "relevant", "answers the question asked",
    ]  # fmt: skip
    # ids copy with one click
    copy = one(browser, "#s-title button.copy")
    copy.click()
    wait_for(browser, lambda d: copy.text in ("copied", "copy failed"))
    # keyboard: arrow keys walk the rows, Enter opens one, Escape goes back to the list
    first = one(browser, ".span-row")
    first.send_keys(Keys.ARROW_DOWN)
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait_for(browser, lambda d: one(d, "#span-detail .span-title").text == "chat gpt-4o-mini")
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait_ready(browser, "sessions")
    assert "session" not in query_of(browser)


def test_an_unknown_session_is_said_in_plain_words(
    page_bridge: RunningBridge, browser: webdriver.Chrome
) -> None:
    open_page(browser, f"{page_bridge.http_url}/ui/?session=nope", "session")
    wait_for(browser, lambda d: one(d, "#problem").is_displayed())
    assert one(browser, "#problem").text == (
        "Session “nope” was not found, or the API key cannot read it."
    )
    browser_log(browser)  # chromium logs the 404 itself: expected here, not later


# -- users and overview ----------------------------------------------------------------------


def test_users_view_lists_users_and_a_users_sessions_and_totals(
    page_bridge: RunningBridge, browser: webdriver.Chrome
) -> None:
    open_page(browser, f"{page_bridge.http_url}/ui/?view=users", "users")
    rows = [texts(r, "td") for r in browser.find_elements(By.CSS_SELECTOR, "table.users tbody tr")]
    assert [r[:2] for r in rows] == [["u-1", "7"], ["u-2", "1"], ["u-3", "1"]]
    browser.find_element(By.LINK_TEXT, "u-3").click()
    wait_for(browser, lambda d: "u-3" in one(d, "#user-body h2").text)
    cards = dict(
        zip(
            texts(browser, "#user-body .card span"),
            texts(browser, "#user-body .card b"),
            strict=True,
        )
    )
    assert cards["sessions"] == "1" and cards["tokens in"] == "12,345"
    assert cards["cost"] == "$0.0000105" and cards["sessions with errors"] == "0"
    assert [
        r[0]
        for r in map(
            lambda e: texts(e, "td"),
            browser.find_elements(By.CSS_SELECTOR, "table.user-sessions tbody tr"),
        )
    ] == ["chat-1"]
    assert query_of(browser)["u"] == ["u-3"]
    # a time range that holds none of u-1's sessions but the first two baselines
    open_page(
        browser,
        f"{page_bridge.http_url}/ui/?view=users&u=u-1&ufrom=2026-09-21T14:13:00&uto=2026-09-21T14:14:30",
        "users",
    )
    assert texts(browser, "table.user-sessions tbody tr td:first-child") == [
        "baseline-1",
        "baseline-0",
    ]


def test_overview_charts_sessions_tokens_and_cost_by_model_and_environment(
    page_bridge: RunningBridge, browser: webdriver.Chrome
) -> None:
    open_page(browser, f"{page_bridge.http_url}/ui/?view=overview", "overview")
    cards = dict(
        zip(
            texts(browser, "#overview-body .card span"),
            texts(browser, "#overview-body .card b"),
            strict=True,
        )
    )
    assert cards["sessions"] == "9" and cards["users"] == "3"
    assert cards["tokens in"] == f"{690 + 12_345:,}"
    wait_for(
        browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "figure.chart .uplot canvas")) == 3
    )
    legends = {
        f.find_element(By.CSS_SELECTOR, "figcaption").text: texts(f, ".u-legend .u-series .u-label")
        for f in browser.find_elements(By.CSS_SELECTOR, "figure.chart")
    }
    assert legends["Sessions by environment"] == ["UTC", "production", "staging"]
    assert set(legends["Cost by model"]) == {"UTC", "gpt-4o", "gpt-4o-mini", "claude-haiku-4-5"}
    by_model = {
        r[0]: r[1:]
        for r in map(
            lambda e: texts(e, "td"),
            browser.find_elements(By.CSS_SELECTOR, "table.by-model tbody tr"),
        )
    }
    assert by_model["gpt-4o-mini"] == ["1", "12,345", "678", "$0.0000105"]
    assert by_model["gpt-4o"][0] == "9"  # 6 baselines + 3 in support-1
    # a model links to its sessions
    browser.find_element(By.LINK_TEXT, "claude-haiku-4-5").click()
    wait_rows(browser, ["staging-1"])
    assert browser_errors(browser) == []


@pytest.fixture(scope="module")
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBridge]:
    with scenario.running_bridge(request, tmp_path_factory.mktemp("live"), "sqlite") as bridge:
        yield bridge


def send_session(bridge: RunningBridge, session_id: str, start_ms: int) -> None:
    provider = sdk_provider(bridge, "http", scenario.RESOURCE)
    scenario.send(
        provider, [scenario.Session(session_id, start_ms, [scenario.agent("a", 0, 10, [])])]
    )
    provider.shutdown()


def test_new_sessions_appear_without_a_reload(
    live: RunningBridge, browser: webdriver.Chrome
) -> None:
    send_session(live, "early-1", 0)
    open_page(browser, f"{live.http_url}/ui/", "sessions")
    assert row_ids(browser) == ["early-1"]
    browser.execute_script("window.__sameDocument = true")
    send_session(live, "late-1", 60_000)
    wait_rows(browser, ["late-1", "early-1"])  # polled, at most a refresh period later
    assert browser.execute_script("return window.__sameDocument") is True
    assert one(browser, "#page-info").text == pages(1, 2, 2)


# -- keys and projects -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBridge]:
    with two_project_bridge(request, tmp_path_factory.mktemp("keyed-ui")) as bridge:
        yield bridge


def test_the_page_asks_for_a_key_and_reads_that_keys_project(
    keyed: RunningBridge, browser: webdriver.Chrome
) -> None:
    browser.get(f"{keyed.http_url}/ui/?project=globex")
    browser.execute_script("sessionStorage.clear()")
    open_page(browser, f"{keyed.http_url}/ui/?project=globex", "key")
    banner = one(browser, "#key-needed")
    assert banner.is_displayed() and banner.text.startswith("This bridge needs an API key.")
    assert browser.switch_to.active_element == one(browser, "#apikey")
    one(browser, "#apikey").send_keys("sk-not-a-key-of-this-bridge", Keys.ENTER)
    wait_for(browser, lambda d: "not accepted" in one(d, "#key-needed").text)
    one(browser, "#apikey").send_keys(ACME_SECRET, Keys.ENTER)
    wait_ready(browser, "sessions")
    assert not one(browser, "#key-needed").is_displayed()
    assert texts(browser, "#project option") == ["acme"]  # the projects this key may read
    assert one(browser, "#project-note").text == "the key reads this project"
    assert row_ids(browser) == ["acme-1"]
    assert query_of(browser)["project"] == ["acme"]
    # the key is kept for this tab only, and never put in the address
    assert browser.execute_script("return sessionStorage.getItem('bridge.apikey')") == ACME_SECRET
    assert browser.execute_script("return localStorage.length") == 0
    assert ACME_SECRET not in browser.current_url
    body = one(browser, "body").text
    for internal in ("bearerAuth", "galileoApiKey", "basicAuth", "401", "unauthorized"):
        assert internal not in body


def test_an_open_bridge_says_no_key_is_needed(
    page_bridge: RunningBridge, browser: webdriver.Chrome
) -> None:
    open_page(browser, f"{page_bridge.http_url}/ui/", "sessions")
    assert texts(browser, "#project option") == ["default"]
    assert one(browser, "#project-note").text == "open bridge: no key needed"
    assert not one(browser, "#key-needed").is_displayed()


# -- safe by construction --------------------------------------------------------------------

PAYLOADS = [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=2</script>",
    "<svg onload=window.__xss=3></svg>",
    '"><iframe srcdoc="<script>parent.__xss=4</script>"></iframe>',
    "javascript:window.__xss=5",
]
XSS_SESSION = PAYLOADS[0]


@pytest.fixture(scope="module")
def hostile(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBridge]:
    markup = " ".join(PAYLOADS)
    chat = scenario.chat(
        1,
        40,
        (5, 5),
        **{
            "gen_ai.input.messages": json.dumps(
                [{"role": PAYLOADS[1], "parts": [{"type": "text", "content": markup}]}]
            ),
            "gen_ai.output.messages": json.dumps(
                [
                    {
                        "role": "assistant",
                        "content": PAYLOADS[2],
                        "tool_calls": [
                            {
                                "id": PAYLOADS[3],
                                "function": {"name": PAYLOADS[4], "arguments": markup},
                            }
                        ],
                    }
                ]
            ),
            "gen_ai.system": PAYLOADS[3],
            PAYLOADS[2]: markup,
        },
    )
    chat.name = PAYLOADS[2]
    tool = scenario.tool(
        PAYLOADS[1],
        41,
        60,
        PAYLOADS[4],
        error=markup,
        **{"gen_ai.tool.call.arguments": markup, "gen_ai.tool.call.result": markup},
    )
    session = scenario.Session(
        XSS_SESSION,
        0,
        [
            scenario.agent(
                PAYLOADS[3], 0, 100, [chat, tool], **{"input.value": markup, "output.value": markup}
            )
        ],
        environment=PAYLOADS[4],
        user_id=PAYLOADS[1],
    )
    with scenario.running_bridge(request, tmp_path_factory.mktemp("hostile"), "sqlite") as bridge:
        provider = sdk_provider(bridge, "http", {**scenario.RESOURCE, "service.name": PAYLOADS[0]})
        scenario.send(provider, [session])
        provider.shutdown()
        yield bridge


def test_markup_in_spans_is_shown_as_text_and_never_runs(
    hostile: RunningBridge, browser: webdriver.Chrome
) -> None:
    browser_log(browser)  # start from a clean log
    for view in ("sessions", "users", "overview"):
        open_page(browser, f"{hostile.http_url}/ui/?view={view}", view)
    one(browser, "#nav-sessions").click()
    wait_rows(browser, [XSS_SESSION])
    cells = texts(browser, "#sessions tbody td")
    assert cells[:3] == [XSS_SESSION, PAYLOADS[1], PAYLOADS[4]]
    browser.find_element(By.CSS_SELECTOR, "#sessions tbody a.id").click()
    wait_ready(browser, "session")
    for row in browser.find_elements(By.CSS_SELECTOR, ".span-row"):
        row.click()

        def selected(d: webdriver.Chrome, r: WebElement = row) -> bool:
            return "selected" in str(r.get_attribute("class"))

        wait_for(browser, selected)
        for fold in browser.find_elements(By.CSS_SELECTOR, "#span-detail details"):
            fold.find_element(By.CSS_SELECTOR, "summary").click()
    page = one(browser, "body").text
    for payload in PAYLOADS:
        assert payload in page
    assert browser.execute_script("return window.__xss") is None
    assert (
        browser.execute_script(
            "return document.querySelectorAll('img, svg:not(.uplot svg), iframe, script:not([src])').length"
        )
        == 0
    )
    # nothing even tried to run (the policy would have refused it and said so)
    assert browser_errors(browser) == []
    # and the policy is there: markup slipped in by hand still cannot run inline code
    browser.execute_script(
        "document.body.insertAdjacentHTML('beforeend', arguments[0])", PAYLOADS[0]
    )
    seen: list[str] = []

    def refused(driver: webdriver.Chrome) -> bool:
        seen.extend(e["message"] for e in browser_log(driver))
        return any(
            "inline event handler violates the following Content Security Policy" in m
            and "blocked" in m
            for m in seen
        )

    wait_for(browser, refused)
    assert browser.execute_script("return window.__xss") is None
