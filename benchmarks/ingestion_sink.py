"""A fast ingestion endpoint for the export benchmark: `POST /api/public/ingestion` answers
207 with every event a success (no schema validation: the test suite's endpoint does that)
and counts what arrived without parsing the batch: it stands for a remote server, whose CPU
is not the bridge's, so it only scans the envelopes' heads for their ids and types.
`GET /stats` says how much; `POST /down` and `POST /up` start and end an outage (503 +
Retry-After: 1 meanwhile). Binds 127.0.0.1 only.

    python benchmarks/ingestion_sink.py --port 14000
"""

from __future__ import annotations

import argparse
import re
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

HOST = "127.0.0.1"
# an event's envelope as the bridge writes it: `id`, `timestamp`, `type`, then `body` (the
# ids of bodies and nested objects never have this shape: the envelope id is a UUID)
ENVELOPE = re.compile(rb'\{"id":"([0-9a-f-]{36})","timestamp":"[^"]*","type":"([a-z-]+)"')


class Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.observations: set[bytes] = set()  # distinct envelope ids but trace-creates
        self.duplicates = 0  # observation events whose id had arrived before (resends)
        self.events = 0
        self.requests = 0
        self.refused = 0
        self.bytes = 0
        self.first_at = 0.0
        self.last_at = 0.0
        self.down = False


def make_app(counts: Counts) -> Starlette:
    async def ingest(request: Request) -> Response:
        body = await request.body()
        if counts.down:
            counts.refused += 1
            return JSONResponse({"message": "down"}, status_code=503, headers={"Retry-After": "1"})
        envelopes = ENVELOPE.findall(body)
        ids = [i for i, kind in envelopes if kind != b"trace-create"]
        now = time.monotonic()
        with counts.lock:
            seen = counts.observations
            counts.duplicates += sum(1 for i in ids if i in seen)
            seen.update(ids)
            counts.events += len(envelopes)
            counts.requests += 1
            counts.bytes += len(body)
            counts.first_at = counts.first_at or now
            counts.last_at = now
        # every event a success: the exporter reads only `errors`
        return Response(b'{"successes":[],"errors":[]}', 207, media_type="application/json")

    async def stats(request: Request) -> Response:
        with counts.lock:
            return JSONResponse(
                {
                    "observations": len(counts.observations),
                    "duplicates": counts.duplicates,
                    "events": counts.events,
                    "requests": counts.requests,
                    "refused": counts.refused,
                    "bytes": counts.bytes,
                    "first_at": counts.first_at,
                    "last_at": counts.last_at,
                    "now": time.monotonic(),
                }
            )

    async def down(request: Request) -> Response:
        counts.down = True
        return JSONResponse({"down": True})

    async def up(request: Request) -> Response:
        counts.down = False
        return JSONResponse({"down": False})

    return Starlette(
        routes=[
            Route("/api/public/ingestion", ingest, methods=["POST"]),
            Route("/stats", stats, methods=["GET"]),
            Route("/down", down, methods=["POST"]),
            Route("/up", up, methods=["POST"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--down", action="store_true", help="start in an outage")
    args = parser.parse_args(argv)
    counts = Counts()
    counts.down = args.down
    config = uvicorn.Config(
        make_app(counts), host=HOST, port=args.port, log_level="warning", access_log=False
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
