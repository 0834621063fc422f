"""Developer sessions: `.venv/bin/nox -s lint typecheck unit` before a commit, `tests` for
the whole suite (what CI runs), `bench` for the benchmark suite. They run in the project's
own virtualenv (`.venv`, see CONTRIBUTING.md), not in fresh ones: the dev extras are heavy
and the suite needs the same interpreter the bridge was installed into."""

from __future__ import annotations

import sys

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "typecheck", "unit"]

PATHS = ["src", "tests", "benchmarks", "noxfile.py"]
PY = sys.executable  # the interpreter nox runs in: .venv/bin/python when run as .venv/bin/nox


@nox.session
def lint(session: nox.Session) -> None:
    """ruff's checks and its formatter, as CI runs them."""
    session.run(PY, "-m", "ruff", "check", *PATHS)
    session.run(PY, "-m", "ruff", "format", "--check", *PATHS)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over src/, tests/ and benchmarks/ (configured in pyproject.toml)."""
    session.run(PY, "-m", "mypy")


@nox.session
def unit(session: nox.Session) -> None:
    """The fast tier: in-process tests only (no servers, no PostgreSQL, no browser)."""
    session.run(PY, "-m", "pytest", "-q", "-m", "unit", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite, as CI runs it (needs PostgreSQL on 127.0.0.1:5432 and chromium)."""
    session.run(PY, "-m", "pytest", "-n", "3", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark suite (15 to 20 minutes; pass options after --, e.g. -- --seconds 5)."""
    session.run(PY, "benchmarks/suite.py", *session.posargs)
