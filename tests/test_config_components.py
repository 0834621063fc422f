"""Components by type: the exporters' map form, the registries, and the checks that need
the file system or the whole document."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from session_bridge import cli
from session_bridge.config import BridgeConfig, load, parse
from session_bridge.export.base import Exporter
from session_bridge.export.config import EXPORTERS, ExporterCommon, create_exporter
from session_bridge.export.file import FileExporterConfig
from session_bridge.export.ingestion import IngestionExporterConfig
from session_bridge.export.otlp import OtlpExporterConfig
from session_bridge.store.config import BACKEND_TYPES, StorageConfig
from session_bridge.store.factory import BACKENDS
from tests.conftest import REPO, TEST_DATA, config_problems


def test_exporters_in_the_collectors_map_form() -> None:
    config = parse(
        """
exporters:
  file:
  otlp/tempo:
    endpoint: http://tempo:4318
  otlp/honeycomb:
    endpoint: https://api.honeycomb.io
    protocol: grpc
  ingestion/langfuse:
    base_url: https://cloud.example
    public_key: pk-lf
    secret_key: sk-lf
"""
    )
    file, tempo, honeycomb, langfuse = config.exporters
    assert file == FileExporterConfig()
    assert isinstance(tempo, OtlpExporterConfig) and isinstance(honeycomb, OtlpExporterConfig)
    assert (tempo.label, tempo.endpoint, tempo.protocol) == (
        "tempo",
        "http://tempo:4318",
        "http/protobuf",
    )
    assert (honeycomb.label, honeycomb.protocol) == ("honeycomb", "grpc")
    assert isinstance(langfuse, IngestionExporterConfig) and langfuse.label == "langfuse"
    assert parse("exporters: {}").exporters == []


def test_the_list_form_still_reads_the_same() -> None:
    listed = parse(
        "exporters:\n  - type: otlp\n    name: tempo\n    endpoint: http://tempo:4318\n"
        "  - type: file\n"
    )
    mapped = parse("exporters:\n  otlp/tempo:\n    endpoint: http://tempo:4318\n  file: {}\n")
    assert listed == mapped


def test_map_form_problems_name_the_component_key() -> None:
    problems = config_problems(
        """
exporters:
  kafka/events: {}
  otlp/tempo:
    endpoitn: http://x
    protocol: carrier-pigeon
    max_batch_size: 1
    retry: {multiplier: 0.5}
  otlp/tempo2:
    type: file
  file/a: []
  file/same: {}
  ingestion/same: {base_url: http://x, public_key: pk, secret_key: sk}
"""
    )
    assert problems == [
        "exporters.kafka/events.type: must be one of debug, file, ingestion, otlp, got 'kafka'",
        # every problem of one exporter, not only the first
        "exporters.otlp/tempo.protocol: must be one of http/protobuf, grpc, got 'carrier-pigeon'",
        "exporters.otlp/tempo.endpoitn: unknown key (expected one of: compression, endpoint,"
        " flush_interval, headers, max_batch_size, name, protocol, queue_capacity, retry,"
        " settle_delay, timeout, type, unhealthy_after)",
        "exporters.otlp/tempo.max_batch_size: must be between 1024 and 67108864 bytes",
        "exporters.otlp/tempo.endpoint: required (e.g. http://collector:4318)",
        "exporters.otlp/tempo.retry: multiplier >= 1, randomization_factor in [0, 1)",
        "exporters.otlp/tempo2: the key names the type and name (write type/name)",
        "exporters.file/a: expected a mapping, got list",
        "exporters.ingestion/same.name: 'same' is used by another exporter",
    ]


def test_every_registered_exporter_builds_from_its_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk")
    assert set(EXPORTERS) == {"debug", "file", "ingestion", "otlp"}
    for type_name, registered in EXPORTERS.items():
        required = {"endpoint": "http://127.0.0.1:9"} if type_name == "otlp" else {}
        config = registered.config.model_validate(required)
        assert config.type == type_name and issubclass(registered.config, ExporterCommon)
        exporter = create_exporter(config, tmp_path)
        assert isinstance(exporter, Exporter) and exporter.name == type_name
        exporter.close()


def test_the_store_backends_are_the_storage_blocks() -> None:
    assert set(BACKENDS) == set(BACKEND_TYPES)
    fields = StorageConfig.model_fields
    for name in BACKEND_TYPES:
        annotation = typing.cast(typing.Any, fields[name].annotation)
        assert name == annotation.TYPE


def test_missing_geoip_databases_are_named(tmp_path: Path) -> None:
    city = TEST_DATA / "geoip" / "GeoIP2-City-Test.mmdb"
    assert config_problems(
        f"enrich:\n  geoip:\n    databases: [{city}, {tmp_path / 'nope.mmdb'}]\n"
    ) == [f"enrich.geoip.databases[1]: no such file: {tmp_path / 'nope.mmdb'}"]


@pytest.mark.parametrize(
    ("grpc", "http"),
    [("127.0.0.1:4318", "127.0.0.1:4318"), ("0.0.0.0:5000", "127.0.0.1:5000")],
)
def test_one_port_for_both_protocols_is_refused(grpc: str, http: str) -> None:
    text = f"receivers:\n  otlp:\n    protocols:\n      grpc: {{endpoint: '{grpc}'}}\n"
    text += f"      http: {{endpoint: '{http}'}}\n"
    assert config_problems(text) == [
        f"receivers.otlp.protocols.grpc.endpoint: {grpc} is also the HTTP endpoint ({http});"
        " give each protocol its own port"
    ]
    parse(text.replace("grpc: {", "grpc: {enabled: false, "))  # gRPC off: no clash
    parse(text.replace(grpc, "127.0.0.1:0").replace(http, "127.0.0.1:0"))  # any free port


def test_check_config_names_the_file_of_bad_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("receivers: [unclosed\n")
    assert cli.main(["check-config", str(path)]) == 1
    assert f"{path}: not valid YAML" in capsys.readouterr().err


def test_check_config_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRIDGE_UNSET", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text(
        """
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:7000"}
      http: {endpoint: "127.0.0.1:7000"}
enrich:
  geoip:
    databases: [/nonexistent/City.mmdb]
storage:
  data_dir: ${env:BRIDGE_UNSET}
exporters:
  otlp/up: {protocol: smoke}
"""
    )
    assert cli.main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    for expected in (
        f"{path}: 5 problem(s)",
        "storage.data_dir: environment variable BRIDGE_UNSET is not set",
        "enrich.geoip.databases[0]: no such file: /nonexistent/City.mmdb",
        "receivers.otlp.protocols.grpc.endpoint: 127.0.0.1:7000 is also the HTTP endpoint",
        "exporters.otlp/up.protocol: must be one of http/protobuf, grpc, got 'smoke'",
        "exporters.otlp/up.endpoint: required",
    ):
        assert expected in err, (expected, err)


def test_models_refuse_unknown_fields_when_built_in_code() -> None:
    with pytest.raises(ValueError, match="endpoitn"):
        OtlpExporterConfig(endpoitn="http://x")  # type: ignore[call-arg]
    assert BridgeConfig().exporters == []


def test_numbers_are_not_flags_and_env_text_is_typed(tmp_path: Path) -> None:
    assert config_problems("receivers: {otlp: {workers: true}}") == [
        "receivers.otlp.workers: expected a number, got True"
    ]
    path = tmp_path / "c.yaml"
    path.write_text("receivers: {otlp: {workers: '${env:N}', max_request_body_size: '${env:S}'}}")
    otlp = load(path, environ={"N": "3", "S": "2MiB"}).receivers.otlp
    assert (otlp.workers, otlp.max_request_body_size) == (3, 2 * 1024 * 1024)


def test_the_readmes_exporters_example_is_valid() -> None:
    readme = (REPO / "README.md").read_text()
    start = readme.index("exporters:\n  ingestion/langfuse:")
    example = readme[start : readme.index("```", start)]
    env = {"LANGFUSE_PUBLIC_KEY": "pk-lf", "LANGFUSE_SECRET_KEY": "sk-lf"}
    labels = [exporter.label for exporter in parse(example, environ=env).exporters]
    assert labels == ["langfuse", "tempo"]
