"""The compiled OTLP attribute decoder (`session_bridge.otlp._wire`). Optional: without a
C compiler the package installs without it and decodes with the protobuf library alone
(`session_bridge.otlp.values`). Everything else is configured in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "session_bridge.otlp._wire",
            sources=["src/session_bridge/otlp/_wire.c"],
            # (on top of the interpreter's own flags: -O3 -Wall on CPython's Linux builds)
            extra_compile_args=["-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
