"""The compiled modules: the OTLP attribute decoder (`session_bridge.otlp._wire`) and the
observation event writer (`session_bridge.mapping._event_json`). Both optional: without a
C compiler the package installs without them, decodes with the protobuf library alone
(`session_bridge.otlp.values`) and builds events in Python (`mapping.langfuse_events`).
Everything else is configured in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "session_bridge.otlp._wire",
            sources=["src/session_bridge/otlp/_wire.c"],
            # (on top of the interpreter's own flags: -O3 -Wall on CPython's Linux builds)
            extra_compile_args=["-Wextra", "-Wno-unused-parameter"],
            optional=True,
        ),
        Extension(
            "session_bridge.mapping._event_json",
            sources=["src/session_bridge/mapping/_event_json.c"],
            extra_compile_args=["-Wextra", "-Wno-unused-parameter"],
            optional=True,
        ),
    ]
)
