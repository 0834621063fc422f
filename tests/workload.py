"""Agent traffic cut up the way replicas behind a load balancer see it.

Each trace of each session is a root `invoke_agent` span that names the session (and
user, client, environment) and children (LLM calls, tools, some failing) that do not.
The children are cut into parts; every part goes to some replica, and the root to a
different replica than the first children, so a trace's spans often reach one
replica before its session id reaches another. Some parts are delivered twice, to
different replicas (a client retrying elsewhere), and every delivery carries parts
of several traces. Everything is drawn from a seed: the same seed, the same traffic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.otlp_builders import proto_request, proto_span

T0 = 1_780_000_000_000_000_000  # well in the past: every session has ended
MS = 1_000_000
MODELS = [("openai", "gpt-4o-2024-08-06"), ("anthropic", "claude-sonnet-4-5-20250929")]


@dataclass(frozen=True)
class Delivery:
    target: int  # replica index
    request: ExportTraceServiceRequest


@dataclass(frozen=True)
class _Part:
    target: int
    service: str
    environment: str
    spans: list[Span]


def _children(rng: random.Random, trace_id: bytes, root: bytes, start: int) -> list[Span]:
    spans = []
    for i in range(rng.randint(1, 6)):
        at = start + (i + 1) * 10 * MS + rng.randint(0, 3) * MS
        if rng.random() < 0.6:
            provider, model = rng.choice(MODELS)
            attributes: dict[str, Any] = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.response.model": model,
                "gen_ai.usage.input_tokens": rng.randint(10, 5000),
                "gen_ai.usage.output_tokens": rng.randint(1, 500),
            }
            name = f"chat {model}"
        else:
            attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"}
            name = "execute_tool lookup"
        status = 2 if rng.random() < 0.15 else 0
        spans.append(
            proto_span(
                trace_id, rng.randbytes(8), name, attributes,
                parent=root, start=at, end=at + rng.randint(1, 9) * MS, status_code=status,
            )
        )  # fmt: skip
    return spans


def agent_traffic(
    seed: int,
    *,
    replicas: int = 3,
    sessions: int = 12,
    traces_per_session: tuple[int, int] = (1, 4),
    duplicate_share: float = 0.3,
    parts_per_delivery: tuple[int, int] = (1, 4),
) -> list[Delivery]:
    rng = random.Random(seed)
    parts: list[_Part] = []
    for s in range(sessions):
        session = f"sess-{seed}-{s:03d}-é"  # not ASCII: JSON, collation and COPY alike
        user = f"user-{rng.randint(1, 5)}-😀"
        client = f"203.0.113.{rng.randint(1, 254)}"
        for t in range(rng.randint(*traces_per_session)):
            trace_id, root = rng.randbytes(16), rng.randbytes(8)
            start = T0 + (s * 100 + t) * 1000 * MS
            children = _children(rng, trace_id, root, start)
            end = max(span.end_time_unix_nano for span in children) + MS
            root_span = proto_span(
                trace_id, root, "invoke_agent support",
                {"gen_ai.operation.name": "invoke_agent", "session.id": session,
                 "user.id": user, "client.address": client},
                start=start, end=end,
            )  # fmt: skip
            root_target = rng.randrange(replicas)
            cuts = sorted(rng.sample(range(1, len(children) + 1), rng.randint(0, len(children))))
            pieces = [
                children[a:b]
                for a, b in zip([0, *cuts], [*cuts, len(children)], strict=True)
                if b > a
            ]
            for n, piece in enumerate(pieces):
                target = rng.randrange(replicas)
                if n == 0:  # the first children reach another replica than the session id
                    target = (root_target + rng.randrange(1, replicas)) % replicas
                env = rng.choice(["production", "staging"])
                parts.append(_Part(target, f"worker-{rng.randint(1, 3)}", env, piece))
            parts.append(_Part(root_target, "frontend", "production", [root_span]))
    for part in list(parts):
        if rng.random() < duplicate_share:  # delivered again, to another replica
            again = (part.target + rng.randrange(1, replicas)) % replicas
            parts.append(_Part(again, part.service, part.environment, part.spans))
    rng.shuffle(parts)
    deliveries: list[Delivery] = []
    for target in range(replicas):
        queue = [part for part in parts if part.target == target]
        while queue:
            take = rng.randint(*parts_per_delivery)
            group, queue = queue[:take], queue[take:]
            request = ExportTraceServiceRequest()
            for part in group:
                one = proto_request(
                    part.spans,
                    {"service.name": part.service, "deployment.environment.name": part.environment},
                )
                request.resource_spans.extend(one.resource_spans)
            deliveries.append(Delivery(target, request))
    rng.shuffle(deliveries)
    return deliveries
