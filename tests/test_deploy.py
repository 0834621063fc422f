"""deploy/, checked without a container engine or a cluster: the files parse, every bridge
config they use passes `session-bridge check-config`, and the ports, names and paths they
share with each other and with the Dockerfile agree."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from session_bridge import cli
from tests.conftest import REPO

DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yaml"
K8S = DEPLOY / "kubernetes"


def _dockerfile() -> tuple[set[int], list[str], str]:
    """The ports the image exposes, its entrypoint, its work dir."""
    text = (REPO / "Dockerfile").read_text()
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.+)$", text, re.M) for p in line.split()}
    entrypoint = yaml.safe_load(_line(r"^ENTRYPOINT (\[.+\])$", text))
    return exposed, entrypoint, _line(r"^WORKDIR (\S+)$", text)


def _line(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.M)
    assert match is not None, f"the Dockerfile has no line matching {pattern}"
    return match[1]


def _listen_ports(entrypoint: list[str]) -> dict[str, int]:
    return {
        flag: int(entrypoint[entrypoint.index(f"--{flag}") + 1].rsplit(":", 1)[1])
        for flag in ("grpc", "http")
    }


def _check_config(
    path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """`session-bridge check-config` on `path` with the environment the deployment gives."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = cli.main(["check-config", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip().endswith(": ok")


def _config_arg(args: list[str]) -> str:
    for n, arg in enumerate(args):
        if arg == "--config":
            return args[n + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"no --config in {args}")


def _image_path_in_repo(path: str) -> Path:
    """A path inside the image, as the Dockerfile copies it from the repository."""
    _, _, workdir = _dockerfile()
    relative = Path(path).relative_to(workdir)
    text = (REPO / "Dockerfile").read_text()
    copied: list[tuple[str, str]] = re.findall(r"^COPY (\S+) \./(\S+)$", text, re.M)
    for source, target in copied:
        if relative.parts[0] == target.rstrip("/"):
            return REPO / source / Path(*relative.parts[1:])
    raise AssertionError(f"{path} is not copied into the image")


# --------------------------------------------------------------------------- compose


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def _bridges(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image", "").startswith("otel-session-bridge")
    }


def _collector_config(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def test_compose_runs_two_replicas_of_the_image_on_postgres(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    compose = _compose()
    bridges = _bridges(compose)
    assert len(bridges) == 2
    for service in bridges.values():
        assert (COMPOSE.parent / service["build"]["context"]).resolve() == REPO
        config = _image_path_in_repo(_config_arg(service["command"]))
        assert config.is_file()
        _check_config(config, service["environment"], monkeypatch, capsys)
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        dsn = service["environment"]["BRIDGE_POSTGRES_DSN"]
        assert "host=postgres" in dsn and "port=5432" in dsn
    assert "postgres" in compose["services"]


def test_the_compose_collector_spreads_over_every_replica_on_their_grpc_port() -> None:
    compose = _compose()
    exposed, entrypoint, _ = _dockerfile()
    ports = _listen_ports(entrypoint)
    assert set(ports.values()) == exposed
    collector = compose["services"]["otel-collector"]
    mount = next(v for v in collector["volumes"] if v.endswith(":ro"))
    source, target, _ = mount.split(":")
    assert _config_arg(collector["command"]) == target
    config = _collector_config(COMPOSE.parent / source)
    hostnames = config["exporters"]["loadbalancing"]["resolver"]["static"]["hostnames"]
    assert sorted(hostnames) == sorted(f"{name}:{ports['grpc']}" for name in _bridges(compose))
    # the ports it publishes are the ones its receivers listen on
    receivers = config["receivers"]["otlp"]["protocols"]
    listening = {int(p["endpoint"].rsplit(":", 1)[1]) for p in receivers.values()}
    published = {int(p.rsplit(":", 1)[1]) for p in collector["ports"]}
    assert published == listening
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["loadbalancing"]
    # a replica's published port is its HTTP port (the API)
    for service in _bridges(compose).values():
        for port in service.get("ports", []):
            assert int(port.rsplit(":", 1)[1]) == ports["http"]


# --------------------------------------------------------------------------- kubernetes


def _manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_every_manifest_has_a_kind_a_name_and_an_api_version() -> None:
    docs = _manifests()
    assert {d["kind"] for d in docs} == {"ConfigMap", "Deployment", "Service"}
    for doc in docs:
        assert doc["apiVersion"] in ("v1", "apps/v1") and doc["metadata"]["name"]


def test_the_gateway_deployment_runs_its_config_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    docs = _manifests()
    deployment = _one(docs, "Deployment", "session-bridge")
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"].startswith("otel-session-bridge:")
    # --config names a file of the mounted ConfigMap
    path = Path(_config_arg(container["args"]))
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == path.parent)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    config_map = _one(docs, "ConfigMap", volume["configMap"]["name"])
    config = tmp_path / path.name
    config.write_text(config_map["data"][path.name])
    env = {e["name"]: e.get("value", "host=db user=bridge dbname=bridge") for e in container["env"]}
    _check_config(config, env, monkeypatch, capsys)
    assert yaml.safe_load(config.read_text())["storage"]["backend"] == "postgres"
    # the ports: the image's, listened on as the entrypoint says, probed by name
    exposed, entrypoint, _ = _dockerfile()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert set(ports.values()) == exposed
    assert ports["otlp-grpc"] == _listen_ports(entrypoint)["grpc"]
    assert ports["otlp-http"] == _listen_ports(entrypoint)["http"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "otlp-http"}
    assert container["readinessProbe"]["httpGet"]["port"] in ports
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("name", ["session-bridge", "session-bridge-otlp", "otel-collector"])
def test_services_select_their_pods_and_name_their_ports(name: str) -> None:
    docs = _manifests()
    service = _one(docs, "Service", name)
    selector = service["spec"]["selector"]
    (deployment,) = [
        d
        for d in docs
        if d["kind"] == "Deployment"
        and selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in named
        assert port["port"] == named[port["targetPort"]]


def test_the_collector_resolves_the_replicas_through_the_headless_service() -> None:
    docs = _manifests()
    headless = _one(docs, "Service", "session-bridge-otlp")
    assert headless["spec"]["clusterIP"] == "None"
    deployment = _one(docs, "Deployment", "otel-collector")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    path = Path(_config_arg(container["args"]))
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == path.parent)
    volume = next(
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    )
    config = yaml.safe_load(_one(docs, "ConfigMap", volume["configMap"]["name"])["data"][path.name])
    dns = config["exporters"]["loadbalancing"]["resolver"]["dns"]
    assert dns["hostname"] == "session-bridge-otlp"
    assert dns["port"] == headless["spec"]["ports"][0]["port"]
    receivers = config["receivers"]["otlp"]["protocols"]
    listening = {int(p["endpoint"].rsplit(":", 1)[1]) for p in receivers.values()}
    assert listening == {p["containerPort"] for p in container["ports"]}
