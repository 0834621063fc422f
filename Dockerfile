# otel-session-bridge: OTLP/gRPC on 4317, OTLP/HTTP + sessions API on 4318.

# The package's wheel, with its compiled attribute decoder and event writer (setup.py):
# built where a C compiler is, so that the image that runs needs none.
FROM python:3.11-slim AS wheel
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY src ./src
RUN pip wheel --no-deps --wheel-dir /wheel .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
# dependencies first, pinned, in a layer of their own: a code change does not reinstall them
COPY constraints.txt ./
RUN pip install -r constraints.txt \
 && useradd --system --uid 10001 --home-dir /var/lib/session-bridge --create-home bridge
COPY --from=wheel /wheel /tmp/wheel
COPY config ./config
RUN pip install --no-deps /tmp/wheel/*.whl && rm -r /tmp/wheel \
 && python -c "import session_bridge.otlp._wire, session_bridge.mapping._event_json"

USER bridge
VOLUME ["/var/lib/session-bridge"]
EXPOSE 4317 4318

# liveness only: /readyz also fails while a downstream endpoint is down, which a restart
# cannot cure; orchestrators that route by readiness probe /readyz themselves
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:4318/healthz', timeout=2).status == 200 else 1)"

# Listen on all interfaces inside the container; pass --config to use a file
# (see config/bridge.yaml for every option). The same image runs either deployment:
#   sidecar (SQLite on the volume):  docker run -v bridge-data:/var/lib/session-bridge IMAGE
#   gateway replica (PostgreSQL):    docker run -e BRIDGE_POSTGRES_DSN=postgresql://...
#                                      IMAGE --config /app/config/gateway.yaml
ENTRYPOINT ["session-bridge", "run", "--grpc", "0.0.0.0:4317", "--http", "0.0.0.0:4318", "--data-dir", "/var/lib/session-bridge"]
