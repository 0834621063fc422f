"""The container image's pins cover every runtime dependency, within pyproject's bounds,
and its health check probes liveness."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_constraints_pin_every_dependency_within_its_bounds() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = _pins()
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"constraints.txt does not pin {requirement.name}"
        assert requirement.specifier.contains(pins[name]), (spec, pins[name])


def test_the_image_installs_pinned_dependencies_and_checks_liveness() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "pip install -r constraints.txt" in dockerfile
    assert dockerfile.index("constraints.txt") < dockerfile.index("COPY src")
    assert "/healthz" in dockerfile and "/readyz'" not in dockerfile
