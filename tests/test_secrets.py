"""API key secrets: only their sha256 is kept after loading, and the map workers get
none of the credentials."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

from session_bridge.config import parse
from session_bridge.server import worker_settings
from tests.conftest import RunningBridge

PLAIN = "sk-plain-0123456789abcdef"
HASHED = "sk-hashed-0123456789abcdef"
LANGFUSE_SECRET = "sk-lf-upstream-0123456789"
DSN_PASSWORD = "pg-password-0123456789"


def _config(data_dir: Path) -> str:
    return f"""
storage:
  data_dir: {data_dir}
receivers:
  otlp:
    workers: 2
    protocols:
      grpc: {{endpoint: "127.0.0.1:0"}}
      http: {{endpoint: "127.0.0.1:0"}}
auth:
  api_keys:
    - {{project_id: plain, public_key: pk-plain, secret_key: {PLAIN}}}
    - {{project_id: hashed, public_key: pk-hashed,
        secret_key_sha256: {hashlib.sha256(HASHED.encode()).hexdigest()}}}
exporters:
  - type: ingestion
    base_url: http://127.0.0.1:9
    public_key: pk-lf
    secret_key: {LANGFUSE_SECRET}
"""


def test_loaded_config_keeps_only_the_digest(tmp_path: Path) -> None:
    config = parse(_config(tmp_path / "d"))
    plain = config.auth.api_keys[0]
    assert plain.secret_key == ""
    assert plain.secret_key_sha256 == hashlib.sha256(PLAIN.encode()).hexdigest()
    assert PLAIN.encode() not in pickle.dumps(config)


def test_map_workers_get_no_credentials(tmp_path: Path) -> None:
    config = parse(_config(tmp_path / "d"))
    config.storage.postgres.dsn = f"postgresql://u:{DSN_PASSWORD}@127.0.0.1/db"
    sent = pickle.dumps(worker_settings(config))  # what each worker receives
    for secret in (PLAIN, LANGFUSE_SECRET, DSN_PASSWORD, "pk-plain", "pk-hashed"):
        assert secret.encode() not in sent
    assert config.exporters and config.auth.api_keys  # the bridge itself keeps them


def test_either_form_of_key_authenticates(tmp_path: Path) -> None:
    config = parse(_config(tmp_path / "d"))
    config.exporters = []  # nothing to deliver to in this test
    bridge = RunningBridge(config)
    try:
        client = bridge.client
        assert client.get("/api/public/sessions", auth=("pk-plain", PLAIN)).status_code == 200
        assert client.get("/api/public/sessions", auth=("pk-hashed", HASHED)).status_code == 200
        bearer = {"Authorization": f"Bearer {PLAIN}"}
        assert client.get("/api/v1/sessions", headers=bearer).status_code == 200
        assert client.get("/api/public/sessions", auth=("pk-plain", HASHED)).status_code == 401
        digest = config.auth.api_keys[0].secret_key_sha256
        assert client.get("/api/public/sessions", auth=("pk-plain", digest)).status_code == 401
    finally:
        bridge.stop()
