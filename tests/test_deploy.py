"""deploy/, checked without a container engine or a cluster: every Compose file and every
Kubernetes manifest validates against its published schema (tests/data/schemas), every
bridge config they run passes `session-bridge check-config`, the Collector configs use
only known components and keys, and the ports, names and paths the files share with each
other and with the Dockerfile agree."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from session_bridge import cli
from session_bridge import config as bridge_config
from tests.conftest import REPO, TEST_DATA

DEPLOY = REPO / "deploy"
SIDECAR = DEPLOY / "sidecar"
GATEWAY = DEPLOY / "gateway"
COMPOSE_FILES = sorted(DEPLOY.glob("*/compose.yaml"))
MANIFEST_FILES = sorted([*DEPLOY.glob("*/kubernetes.yaml"), *DEPLOY.glob("*/kubernetes/*.yaml")])
SCHEMAS = TEST_DATA / "schemas"
K8S_SCHEMAS = SCHEMAS / "kubernetes" / "v1.33.0"
BRIDGE_IMAGE = "otel-session-bridge"
COLLECTOR_IMAGE = "otel/opentelemetry-collector-contrib"

Doc = dict[str, Any]


def _yaml(path: Path) -> Doc:
    doc: Doc = yaml.safe_load(path.read_text())
    return doc


# --------------------------------------------------------------------------- the image


def _image_stage() -> str:
    """The Dockerfile's last stage: the image that runs (the one before builds the wheel)."""
    return (REPO / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]


def _dockerfile() -> tuple[set[int], list[str], str]:
    """The ports the image exposes, its entrypoint, its work dir."""
    text = _image_stage()
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.+)$", text, re.M) for p in line.split()}
    entrypoint = yaml.safe_load(_line(r"^ENTRYPOINT (\[.+\])$", text))
    return exposed, entrypoint, _line(r"^WORKDIR (\S+)$", text)


def _line(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.M)
    assert match is not None, f"the Dockerfile has no line matching {pattern}"
    return match[1]


def _flag(args: list[str], name: str) -> str:
    for n, arg in enumerate(args):
        if arg == name:
            return args[n + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"no {name} in {args}")


def _listen_ports() -> dict[str, int]:
    """The ports the image's entrypoint serves, by protocol (its flags win over a config's)."""
    _, entrypoint, _ = _dockerfile()
    return {p: int(_flag(entrypoint, f"--{p}").rsplit(":", 1)[1]) for p in ("grpc", "http")}


def _data_dir() -> str:
    _, entrypoint, _ = _dockerfile()
    return _flag(entrypoint, "--data-dir")


def test_the_image_listens_on_the_ports_it_exposes() -> None:
    exposed, _, _ = _dockerfile()
    assert set(_listen_ports().values()) == exposed
    assert "HEALTHCHECK" in (REPO / "Dockerfile").read_text()


def _image_path_in_repo(path: str) -> Path:
    """A path inside the image, as the Dockerfile copies it from the repository."""
    _, _, workdir = _dockerfile()
    relative = Path(path).relative_to(workdir)
    text = _image_stage()
    copied: list[tuple[str, str]] = re.findall(r"^COPY (\S+) \./(\S+)$", text, re.M)
    for source, target in copied:
        if relative.parts[0] == target.rstrip("/"):
            return REPO / source / Path(*relative.parts[1:])
    raise AssertionError(f"{path} is not copied into the image")


def _check_config(
    path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> bridge_config.BridgeConfig:
    """`session-bridge check-config` on `path` with the environment the deployment gives;
    the config it reads."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = cli.main(["check-config", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip().endswith(": ok")
    return bridge_config.load(path, env)


# --------------------------------------------------------------------------- schemas


@cache
def _compose_validator() -> Draft202012Validator:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@cache
def _k8s_registry() -> Registry[Any]:
    definitions = json.loads((K8S_SCHEMAS / "_definitions.json").read_text())
    resource: Resource[Any] = Resource.from_contents(definitions)
    registry: Registry[Any] = Registry().with_resource(definitions["$id"], resource)
    return registry


def _k8s_schema_file(doc: Doc) -> Path:
    """The schema of a manifest's kind: `<kind>[-<group>]-<version>.json`."""
    group, _, version = doc["apiVersion"].rpartition("/")
    name = "-".join(p for p in (doc["kind"].lower(), group.split(".")[0], version) if p)
    path = K8S_SCHEMAS / f"{name}.json"
    assert path.is_file(), f"no schema for {doc['kind']}: list it in tests/data/schemas/refresh.py"
    return path


def _k8s_errors(doc: Doc) -> list[ValidationError]:
    schema = json.loads(_k8s_schema_file(doc).read_text())
    validator = Draft202012Validator(schema, registry=_k8s_registry())
    return list(validator.iter_errors(doc))


def _messages(errors: list[ValidationError]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_compose_files_follow_the_compose_specification(path: Path) -> None:
    errors = list(_compose_validator().iter_errors(_yaml(path)))
    assert not errors, _messages(errors)


def test_the_compose_schema_rejects_a_broken_file() -> None:
    broken = copy.deepcopy(_yaml(SIDECAR / "compose.yaml"))
    broken["services"]["app"]["enviroment"] = {"A": "b"}  # misspelt
    broken["services"]["session-bridge"]["ports"] = "4318:4318"  # a list, not a string
    messages = _messages(list(_compose_validator().iter_errors(broken)))
    assert any("enviroment" in m for m in messages), messages
    assert any(m.startswith("services/session-bridge/ports") for m in messages), messages


def _manifests(paths: list[Path]) -> list[Doc]:
    return [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc]


def _documents() -> Iterator[tuple[str, Doc]]:
    for path in MANIFEST_FILES:
        for doc in _manifests([path]):
            yield f"{path.relative_to(DEPLOY)}:{doc['kind']}/{doc['metadata']['name']}", doc


@pytest.mark.parametrize("doc", [pytest.param(doc, id=name) for name, doc in _documents()])
def test_manifests_follow_the_kubernetes_schemas(doc: Doc) -> None:
    errors = _k8s_errors(doc)
    assert not errors, _messages(errors)


def test_every_shape_has_its_files() -> None:
    assert [p.parent.name for p in COMPOSE_FILES] == ["gateway", "sidecar"]
    assert {str(p.relative_to(DEPLOY)) for p in MANIFEST_FILES} == {
        "gateway/kubernetes/bridge.yaml",
        "gateway/kubernetes/collector.yaml",
        "sidecar/kubernetes.yaml",
    }
    kinds = {doc["kind"] for _, doc in _documents()}
    assert kinds == {"ConfigMap", "Deployment", "PersistentVolumeClaim", "Service"}


def test_the_kubernetes_schemas_reject_a_broken_manifest() -> None:
    deployment = _one(_manifests([SIDECAR / "kubernetes.yaml"]), "Deployment", "your-app")
    broken = copy.deepcopy(deployment)
    broken["spec"]["replicas"] = "one"
    (sidecar,) = broken["spec"]["template"]["spec"]["initContainers"]
    sidecar["livenessProbe"]["httpGet"]["paht"] = "/healthz"  # misspelt: strict schemas
    messages = _messages(_k8s_errors(broken))
    assert any(m.startswith("spec/replicas") for m in messages), messages
    assert any("paht" in m for m in messages), messages
    unknown = {**deployment, "kind": "StatefulSet"}
    with pytest.raises(AssertionError, match="no schema for StatefulSet"):
        _k8s_errors(unknown)


# --------------------------------------------------------------------------- collector


@cache
def _known_components() -> Doc:
    return _yaml(TEST_DATA / "collector" / "components.yaml")


def _collector_problems(config: Doc) -> list[str]:
    """What a Collector would refuse in `config`, or this repository does not expect: an
    unknown component or key, a pipeline naming an undefined component, a load_balancing
    exporter whose routing or resolver is wrong."""
    known = _known_components()
    problems: list[str] = []
    for section in ("receivers", "processors", "exporters"):
        for name, settings in config.get(section, {}).items():
            kind = name.split("/", 1)[0]
            if kind not in known[section]:
                problems.append(f"{section}.{name}: unknown component type {kind}")
            elif section == "exporters":
                problems += _load_balancing_problems(f"{section}.{name}", settings or {})
            else:
                problems += _unknown_keys(f"{section}.{name}", settings or {}, known[section][kind])
    for pipeline_name, pipeline in config["service"]["pipelines"].items():
        for section, names in pipeline.items():
            for name in names:
                if name not in config.get(section, {}):
                    problems.append(
                        f"service.pipelines.{pipeline_name}: {name} is not in {section}"
                    )
    return problems


def _unknown_keys(path: str, settings: Doc, known: Any) -> list[str]:
    problems: list[str] = []
    for key, value in settings.items():
        if key not in known:
            problems.append(f"{path}.{key}: unknown key")
        elif isinstance(known, dict) and isinstance(value, dict):
            problems += _unknown_keys(f"{path}.{key}", value, known[key])
    return problems


def _load_balancing_problems(path: str, settings: Doc) -> list[str]:
    known = _known_components()["exporters"][path.split(".")[1].split("/")[0]]
    problems = [f"{path}.{key}: unknown key" for key in settings if key not in known["keys"]]
    routing_key = settings.get("routing_key", "traceID")
    if routing_key not in known["traces_routing_keys"]:
        problems.append(f"{path}.routing_key: {routing_key} does not route traces")
    if (routing_key == "attributes") != bool(settings.get("routing_attributes")):
        problems.append(f"{path}: routing_attributes goes with routing_key: attributes, and only")
    otlp = settings.get("protocol", {}).get("otlp", {})
    problems += _unknown_keys(f"{path}.protocol.otlp", otlp, known["protocol"]["otlp"])
    problems += _unknown_keys(f"{path}.protocol.otlp.tls", otlp.get("tls", {}), known["tls"])
    resolvers = settings.get("resolver", {})
    if len(resolvers) != 1:
        problems.append(f"{path}.resolver: exactly one of {', '.join(known['resolver'])}")
    problems += _unknown_keys(f"{path}.resolver", resolvers, known["resolver"])
    return problems


def _collector_configs() -> dict[str, Doc]:
    """Every Collector config under deploy/: the Compose one, the ConfigMap's."""
    collector = _yaml(GATEWAY / "compose.yaml")["services"]["otel-collector"]
    source = _mounted_file(GATEWAY, collector)
    configs = {"compose": _yaml(source)}
    docs = _manifests(sorted((GATEWAY / "kubernetes").glob("*.yaml")))
    deployment = _one(docs, "Deployment", "otel-collector")
    configs["kubernetes"] = yaml.safe_load(_mounted_config_map(docs, deployment, "collector"))
    return configs


@pytest.mark.parametrize("where", ["compose", "kubernetes"])
def test_collector_configs_use_known_components_and_keys(where: str) -> None:
    config = _collector_configs()[where]
    assert _collector_problems(config) == []
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["load_balancing"]


@pytest.mark.parametrize("where", ["compose", "kubernetes"])
def test_the_collector_routes_spans_by_session_id(where: str) -> None:
    exporter = _collector_configs()[where]["exporters"]["load_balancing"]
    assert exporter["routing_key"] == "attributes"
    assert exporter["routing_attributes"] == ["session.id"]


def test_the_collector_check_finds_what_a_collector_would_refuse() -> None:
    broken = copy.deepcopy(_collector_configs()["compose"])
    exporter = broken["exporters"]["load_balancing"]
    exporter["routing_key"] = "resource"  # metrics and logs only
    exporter["resolver"]["dns"] = {"hostname": "bridge", "prot": 4317}
    exporter["protocol"]["otlp"]["endpoint"] = "bridge:4317"  # set by the exporter itself
    broken["processors"]["memory_limiter"] = {}
    broken["service"]["pipelines"]["traces"]["processors"] = ["batch", "filter"]
    assert sorted(_collector_problems(broken)) == [
        "exporters.load_balancing.protocol.otlp.endpoint: unknown key",
        "exporters.load_balancing.resolver.dns.prot: unknown key",
        "exporters.load_balancing.resolver: exactly one of static, dns, k8s, aws_cloud_map",
        "exporters.load_balancing.routing_key: resource does not route traces",
        "exporters.load_balancing: routing_attributes goes with routing_key: attributes, and only",
        "processors.memory_limiter: unknown component type memory_limiter",
        "service.pipelines.traces: filter is not in processors",
    ]


def test_compose_and_kubernetes_run_the_same_collector() -> None:
    compose = _yaml(GATEWAY / "compose.yaml")["services"]["otel-collector"]["image"]
    docs = _manifests(sorted((GATEWAY / "kubernetes").glob("*.yaml")))
    (container,) = _one(docs, "Deployment", "otel-collector")["spec"]["template"]["spec"][
        "containers"
    ]
    assert compose == container["image"]
    name, _, version = compose.partition(":")
    assert name == COLLECTOR_IMAGE and re.fullmatch(r"\d+\.\d+\.\d+", version), compose
    configs = _collector_configs()
    without_resolver = [
        {**c, "exporters": {"load_balancing": {**c["exporters"]["load_balancing"], "resolver": {}}}}
        for c in configs.values()
    ]
    assert without_resolver[0] == without_resolver[1]


# --------------------------------------------------------------------------- compose


def _bridges(compose: Doc) -> dict[str, Doc]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image", "").startswith(f"{BRIDGE_IMAGE}:")
    }


def _mounted_file(base: Path, service: Doc) -> Path:
    """The repository file a service mounts at its --config path."""
    target = _flag(service["command"], "--config")
    for volume in service["volumes"]:
        source, _, rest = str(volume).partition(":")
        if rest.split(":")[0] == target:
            return base / source
    raise AssertionError(f"nothing mounted at {target}")


def _published_ports(service: Doc) -> set[int]:
    return {int(p.rsplit(":", 1)[1]) for p in service.get("ports", [])}


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.parent.name)
def test_compose_bridges_run_the_image_with_a_valid_config(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    bridges = _bridges(_yaml(path))
    assert bridges
    for service in bridges.values():
        assert (path.parent / service["build"]["context"]).resolve() == REPO
        config = _image_path_in_repo(_flag(service["command"], "--config"))
        assert config.is_file()
        _check_config(config, service.get("environment", {}), monkeypatch, capsys)
        # published: the HTTP port (the API), on loopback only
        assert _published_ports(service) <= {_listen_ports()["http"]}
        assert all(p.startswith("127.0.0.1:") for p in service.get("ports", []))


def test_the_compose_gateway_runs_three_replicas_on_postgres(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    compose = _yaml(GATEWAY / "compose.yaml")
    bridges = _bridges(compose)
    assert len(bridges) == 3
    assert "postgres" in compose["services"]
    for service in bridges.values():
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        dsn = service["environment"]["BRIDGE_POSTGRES_DSN"]
        assert "host=postgres" in dsn and "port=5432" in dsn
        config = _image_path_in_repo(_flag(service["command"], "--config"))
        loaded = _check_config(config, service["environment"], monkeypatch, capsys)
        assert loaded.storage.backend == "postgres"


def test_the_compose_collector_routes_to_every_replica_on_their_grpc_port() -> None:
    compose = _yaml(GATEWAY / "compose.yaml")
    collector = compose["services"]["otel-collector"]
    config = _collector_configs()["compose"]
    hostnames = config["exporters"]["load_balancing"]["resolver"]["static"]["hostnames"]
    grpc = _listen_ports()["grpc"]
    assert sorted(hostnames) == sorted(f"{name}:{grpc}" for name in _bridges(compose))
    assert set(collector["depends_on"]) == set(_bridges(compose))
    # the ports it publishes are the ones its receivers listen on
    receivers = config["receivers"]["otlp"]["protocols"]
    listening = {int(p["endpoint"].rsplit(":", 1)[1]) for p in receivers.values()}
    assert _published_ports(collector) == listening


def test_the_compose_sidecar_app_exports_to_the_bridge(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    compose = _yaml(SIDECAR / "compose.yaml")
    ((name, bridge),) = _bridges(compose).items()
    app = compose["services"]["app"]
    assert "your-app" in app["image"]  # a placeholder the user replaces
    env = app["environment"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{name}:{_listen_ports()['http']}"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert env["OTEL_TRACES_EXPORTER"] == "otlp"
    # started once the image's HEALTHCHECK passes
    assert app["depends_on"][name]["condition"] == "service_healthy"
    # SQLite on a named volume, mounted where the entrypoint puts the data dir
    config = _image_path_in_repo(_flag(bridge["command"], "--config"))
    assert _check_config(config, {}, monkeypatch, capsys).storage.backend == "sqlite"
    volume, target = bridge["volumes"][0].split(":")[:2]
    assert target == _data_dir() and volume in compose["volumes"]


# --------------------------------------------------------------------------- kubernetes


def _one(docs: list[Doc], kind: str, name: str) -> Doc:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def _mounted_config_map(docs: list[Doc], deployment: Doc, container_name: str) -> str:
    """The text of the ConfigMap file a container's --config names."""
    pod = deployment["spec"]["template"]["spec"]
    containers = [*pod.get("initContainers", []), *pod["containers"]]
    (container,) = [c for c in containers if c["name"] == container_name]
    path = Path(_flag(container["args"], "--config"))
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == path.parent)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    text: str = _one(docs, "ConfigMap", volume["configMap"]["name"])["data"][path.name]
    return text


def _check_bridge_container(container: Doc) -> None:
    """The image (tagged with the package's version), its ports, served as the entrypoint
    says, probed by name on /healthz."""
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert container["image"] == f"{BRIDGE_IMAGE}:{version}"
    exposed, _, _ = _dockerfile()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert set(ports.values()) == exposed
    assert ports["otlp-grpc"] == _listen_ports()["grpc"]
    assert ports["otlp-http"] == _listen_ports()["http"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "otlp-http"}


def _bridge_config_of(
    docs: list[Doc],
    deployment: Doc,
    container: Doc,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> bridge_config.BridgeConfig:
    text = _mounted_config_map(docs, deployment, container["name"])
    config = tmp_path / "bridge.yaml"
    config.write_text(text)
    env = {e["name"]: e.get("value", "host=db user=bridge dbname=bridge") for e in container["env"]}
    return _check_config(config, env, monkeypatch, capsys)


def test_the_gateway_deployment_runs_three_replicas_of_its_config_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    docs = _manifests(sorted((GATEWAY / "kubernetes").glob("*.yaml")))
    deployment = _one(docs, "Deployment", "session-bridge")
    assert deployment["spec"]["replicas"] == 3
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    _check_bridge_container(container)
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "otlp-http"}
    config = _bridge_config_of(docs, deployment, container, tmp_path, monkeypatch, capsys)
    assert config.storage.backend == "postgres"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("name", ["session-bridge", "session-bridge-otlp", "otel-collector"])
def test_gateway_services_select_their_pods_and_name_their_ports(name: str) -> None:
    docs = _manifests(sorted((GATEWAY / "kubernetes").glob("*.yaml")))
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
    docs = _manifests(sorted((GATEWAY / "kubernetes").glob("*.yaml")))
    headless = _one(docs, "Service", "session-bridge-otlp")
    assert headless["spec"]["clusterIP"] == "None"
    deployment = _one(docs, "Deployment", "otel-collector")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    config = _collector_configs()["kubernetes"]
    dns = config["exporters"]["load_balancing"]["resolver"]["dns"]
    assert dns["hostname"] == "session-bridge-otlp"
    assert dns["port"] == headless["spec"]["ports"][0]["port"] == _listen_ports()["grpc"]
    receivers = config["receivers"]["otlp"]["protocols"]
    listening = {int(p["endpoint"].rsplit(":", 1)[1]) for p in receivers.values()}
    assert listening == {p["containerPort"] for p in container["ports"]}


def test_the_sidecar_pod_runs_the_app_and_the_bridge_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    docs = _manifests([SIDECAR / "kubernetes.yaml"])
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    # a native sidecar: an init container that keeps running beside the app
    (bridge,) = pod["initContainers"]
    assert bridge["restartPolicy"] == "Always"
    _check_bridge_container(bridge)
    assert bridge["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "otlp-http"}
    assert "readinessProbe" not in bridge  # the pod's readiness is the app's
    (app,) = pod["containers"]
    assert "your-app" in app["image"]  # a placeholder the user replaces
    env = {e["name"]: e["value"] for e in app["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://localhost:{_listen_ports()['http']}"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert env["OTEL_TRACES_EXPORTER"] == "otlp"
    # SQLite on the claimed volume, mounted at the data dir both the config and the image use
    config = _bridge_config_of(docs, deployment, bridge, tmp_path, monkeypatch, capsys)
    assert config.storage.backend == "sqlite"
    assert config.storage.data_dir == _data_dir()
    mount = next(m for m in bridge["volumeMounts"] if m["mountPath"] == _data_dir())
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    _one(docs, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    # one bridge per data dir: one pod, the old one gone before the new one starts
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    uid = int(re.findall(r"useradd .*--uid (\d+)", (REPO / "Dockerfile").read_text())[0])
    assert bridge["securityContext"]["runAsUser"] == pod["securityContext"]["fsGroup"] == uid
