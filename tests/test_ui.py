"""The sessions page: served from the package, self-contained, and working in a browser."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from importlib import resources

import pytest

from tests import agent_scenario as scenario
from tests.conftest import RunningBridge

FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}


@pytest.fixture(scope="module")
def page_bridge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBridge]:
    with scenario.populated_bridge(request, tmp_path_factory.mktemp("ui"), "sqlite") as bridge:
        yield bridge


def test_root_redirects_to_the_page(page_bridge: RunningBridge) -> None:
    response = page_bridge.client.get("/")
    assert response.status_code == 307 and response.headers["location"] == "/ui/"
    page = page_bridge.client.get("/ui/")
    assert page.status_code == 200 and '<table id="sessions">' in page.text


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


def test_page_keeps_the_api_key_in_session_storage_only() -> None:
    script = resources.files("session_bridge").joinpath("static", "app.js").read_text()
    assert '["apikey", sessionStorage]' in script
    assert "localStorage.setItem" not in script


# CI installs chromium (.ci/run) and must run this; elsewhere it is skipped without it
@pytest.mark.skipif(
    shutil.which("chromium") is None and not os.environ.get("CI"),
    reason="needs Debian's chromium package",
)
def test_page_lists_sessions_and_shows_a_timeline_in_a_browser(page_bridge: RunningBridge) -> None:
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                "chromium", "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", f"--user-data-dir={profile}",
                "--virtual-time-budget=5000", "--dump-dom",
                f"{page_bridge.http_url}/ui/?session=support-1",
            ],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    dom = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    assert dom.count('data-id="baseline-') == 6 and 'data-id="support-1"' in dom
    assert "8 session(s)" in dom
    assert "triage → billing" in dom  # a handoff in support-1's timeline
    assert "lookup_order" in dom and "guardrail blocks" in dom
