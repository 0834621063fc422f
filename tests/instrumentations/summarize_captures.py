"""Write ``captured/SUMMARY.md``: per capture, the span tree with the usage/session/
provider/model/operation keys each span carries (values included).  Pure stdlib.

Run:  python summarize_captures.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CAPTURED = Path(__file__).resolve().parent / "captured"

INTERESTING_PREFIXES = (
    "gen_ai.usage.",
    "gen_ai.client.token.usage",
    "llm.token_count.",
    "ai.usage.",
    "langfuse.observation.usage_details",
    "langfuse.observation.cost_details",
    "langfuse.observation.type",
    "langfuse.observation.model.name",
    "langfuse.observation.level",
    "session.id",
    "user.id",
    "gen_ai.conversation.id",
    "traceloop.association.properties.",
    "traceloop.span.kind",
    "ai.telemetry.metadata.",
    "ai.telemetry.functionId",
    "ai.settings.context.",
    "ai.operationId",
    "ai.model.",
    "gen_ai.system",
    "gen_ai.provider.name",
    "llm.system",
    "llm.provider",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.model_name",
    "embedding.model_name",
    "gen_ai.operation.name",
    "openinference.span.kind",
    "gen_ai.agent.",
    "gen_ai.aggregated_usage.",
    "metadata",
    "gen_ai.response.id",
    "gen_ai.tool.",
    "gen_ai.handoff.",
    "agent.name",
    "graph.node.",
    "tool.name",
    "mcp.session.id",
    "input.value",
    "output.value",
    "traceloop.entity.",
    "traceloop.workflow.name",
    "ai.toolCall.",
    "logfire.msg",
    "error.type",
)


def _keep(key: str) -> bool:
    # entries ending in "." are prefixes, the others exact keys
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in INTERESTING_PREFIXES)


def _fmt(v: Any) -> str:
    s = json.dumps(v)
    return s if len(s) <= 90 else s[:87] + "..."


def summarize_file(path: Path) -> list[str]:
    spans = json.loads(path.read_text())
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in sorted(spans, key=lambda s: s["start_ns"]):
        parent = s["parent_span_id"] if s["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(s)
    lines = [f"## {path.stem}", "", f"resource: `{_fmt(spans[0]['resource'])}`", "", "```"]

    def walk(pid: str | None, depth: int) -> None:
        for s in children.get(pid, []):
            pad = "  " * depth
            status = "" if s["status"]["code"] == "UNSET" else f" status={s['status']['code']}"
            lines.append(f"{pad}{s['name']} [{s['kind']}] scope={s['scope']['name']}{status}")
            for k, v in s["attributes"].items():
                if _keep(k):
                    lines.append(f"{pad}    {k} = {_fmt(v)}")
            walk(s["span_id"], depth + 1)

    walk(None, 0)
    lines += ["```", ""]
    return lines


# what each capture says, by the keys that say it (exact keys or prefixes ending in ".")
FACTS: dict[str, tuple[str, ...]] = {
    "session": (
        "session.id",
        "gen_ai.conversation.id",
        "langfuse.session.id",
        "mcp.session.id",
        "ai.telemetry.metadata.sessionId",
        "ai.settings.context.sessionId",
        "traceloop.association.properties.session_id",
    ),
    "user": (
        "user.id",
        "enduser.id",
        "langfuse.user.id",
        "ai.telemetry.metadata.userId",
        "ai.settings.context.userId",
        "traceloop.association.properties.user_id",
        "metadata",
    ),
    "provider": (
        "gen_ai.provider.name",
        "gen_ai.system",
        "llm.provider",
        "llm.system",
        "ai.model.provider",
    ),
    "model": (
        "gen_ai.response.model",
        "gen_ai.request.model",
        "llm.model_name",
        "ai.model.id",
        "ai.response.model",
    ),
    "tokens": (
        "gen_ai.usage.",
        "llm.token_count.",
        "ai.usage.",
        "gen_ai.aggregated_usage.",
    ),
    "tool call": (
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "ai.toolCall.args",
        "ai.toolCall.result",
        "traceloop.entity.input",
        "traceloop.entity.output",
    ),
    "agent": ("gen_ai.agent.name", "agent.name", "graph.node.id", "graph.node.parent_id"),
    "handoff": ("gen_ai.handoff.",),
}
_USAGE_MARKERS = (
    "gen_ai.usage.input_tokens",
    "llm.token_count.prompt",
    "ai.usage.inputTokens",
    "ai.usage.promptTokens",
    "gen_ai.usage.prompt_tokens",
)


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in patterns)


def facts_line(path: Path) -> list[str]:
    """One row of the facts table: which keys carry what, and the traps."""
    spans = json.loads(path.read_text())
    cells = []
    for patterns in FACTS.values():
        keys = sorted({k for s in spans for k in s["attributes"] if _matches(k, patterns)})
        cells.append(", ".join(f"`{k}`" for k in keys) or "-")
    by_id = {s["span_id"]: s for s in spans}
    has_usage = {s["span_id"] for s in spans if any(k in s["attributes"] for k in _USAGE_MARKERS)}
    wrappers = set()
    for sid in has_usage:
        parent = by_id[sid]["parent_span_id"]
        while parent in by_id:
            if parent in has_usage:
                wrappers.add(by_id[parent]["name"])
            parent = by_id[parent]["parent_span_id"]
    ids: dict[str, int] = {}
    for s in spans:
        rid = s["attributes"].get("gen_ai.response.id")
        if rid:
            ids[rid] = ids.get(rid, 0) + 1
    dupes = sum(1 for n in ids.values() if n > 1)
    tool_spans = [
        s
        for s in spans
        if s["attributes"].get("openinference.span.kind") == "TOOL"
        or s["attributes"].get("gen_ai.operation.name") == "execute_tool"
    ]
    oi_tool_io = any("input.value" in s["attributes"] for s in tool_spans)
    in_events = any(e["name"] == "gen_ai.tool.message" for s in tool_spans for e in s["events"])
    providers = sorted(
        {str(s["attributes"][k]) for s in spans for k in FACTS["provider"] if k in s["attributes"]}
    )
    traps = []
    if wrappers:
        traps.append("usage repeated on " + ", ".join(f"`{w}`" for w in sorted(wrappers)))
    if dupes:
        traps.append(f"{dupes} response ids on 2+ spans")
    if oi_tool_io:
        traps.append("tool I/O in `input.value`/`output.value`")
    if in_events:
        traps.append("tool I/O in span events")
    row = [
        f"`{path.stem}`",
        *cells,
        ", ".join(f"`{p}`" for p in providers) or "-",
        "; ".join(traps) or "-",
    ]
    return ["| " + " | ".join(row) + " |"]


def main() -> None:
    out = ["# Captured spans: the keys that matter (generated by summarize_captures.py)", ""]
    paths = [
        p
        for p in sorted(CAPTURED.glob("*.json"))
        if not p.name.endswith((".logs.json", ".otlp-request.json", ".served.json"))
    ]
    out += [
        "## Which keys carry what",
        "",
        "Per capture: the keys seen for each fact, the provider values sent, and the traps:",
        "usage on a span that also has usage below it (a wrapper repeating its children's,",
        "or one call traced twice), one `gen_ai.response.id` on several spans.  What the",
        "model server metered is in `<capture>.served.json` (agent-framework captures).",
        "",
        "| capture | " + " | ".join(FACTS) + " | provider values | traps |",
        "|" + "---|" * (len(FACTS) + 3),
    ]
    for path in paths:
        out += facts_line(path)
    out.append("")
    for path in paths:
        out += summarize_file(path)
    (CAPTURED / "SUMMARY.md").write_text("\n".join(out))
    print(f"wrote {CAPTURED / 'SUMMARY.md'}")


if __name__ == "__main__":
    main()
