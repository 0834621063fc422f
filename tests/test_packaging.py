"""The container image's pins cover every runtime dependency, within pyproject's bounds,
its package carries the compiled decoder, and its health check probes liveness."""

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
    build, image = (REPO / "Dockerfile").read_text().rsplit("\nFROM ", 1)
    assert "pip install -r constraints.txt" in image
    # dependencies in a layer of their own, before the package
    assert image.index("constraints.txt") < image.index("COPY --from=wheel")
    assert "/healthz" in image and "/readyz'" not in image
    # the package's wheel is built with a C compiler, and the image checks its compiled
    # modules
    assert "AS wheel" in build and "gcc" in build and "pip wheel" in build
    assert "import session_bridge.otlp._wire, session_bridge.mapping._event_json" in image
