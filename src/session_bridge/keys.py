"""API keys: which project a credential belongs to.

Keys come from the `auth.api_keys` section of the configuration; only the sha256
of each secret is kept in memory (the config may give the hash itself, so the
secret never has to be written down). A credential is either HTTP Basic
`public_key:secret_key` (Langfuse style) or a bare secret (`Bearer <secret>`,
`Galileo-API-Key: <secret>`). Used by the OTLP receivers (to file spans under the
sender's project) and by the query APIs (to scope every answer to a project).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import Field

from session_bridge.configkit import Section

# Project ids appear in URL paths: a conservative alphabet, checked in config and in the APIs.
PROJECT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
PROJECT_ID = re.compile(PROJECT_ID_PATTERN)
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


class ApiKeyConfig(Section):
    project_id: str = ""
    public_key: str = ""
    secret_key: str = ""
    secret_key_sha256: str = ""


def secret_digest(key: ApiKeyConfig) -> str:
    """The sha256 (hex, lower case) of a key's secret, however the config gave it."""
    if key.secret_key_sha256:
        return key.secret_key_sha256.lower()
    return hashlib.sha256(key.secret_key.encode()).hexdigest()


class AuthConfig(Section):
    """`auth:` — the API keys (`receivers.otlp.auth` says whether ingest needs one)."""

    api_keys: list[ApiKeyConfig] = Field(default_factory=list)

    def check(self, path: str) -> list[str]:
        problems: list[str] = []
        public_keys: set[str] = set()
        secrets: set[str] = set()
        for index, key in enumerate(self.api_keys):
            at = f"{path}.api_keys[{index}]"
            if not PROJECT_ID.match(key.project_id):
                problems.append(
                    f"{at}.project_id: must match {PROJECT_ID_PATTERN}, got {key.project_id!r}"
                )
            if not key.public_key.strip():
                problems.append(f"{at}.public_key: required (e.g. pk-...)")
            elif key.public_key in public_keys:
                problems.append(f"{at}.public_key: {key.public_key!r} is used by another key")
            public_keys.add(key.public_key)
            if bool(key.secret_key) == bool(key.secret_key_sha256):
                problems.append(f"{at}: set exactly one of secret_key and secret_key_sha256")
            elif key.secret_key_sha256 and not _SHA256_HEX.match(key.secret_key_sha256):
                problems.append(f"{at}.secret_key_sha256: expected 64 hex digits (a sha256)")
            elif key.secret_key and len(key.secret_key) < 16:
                problems.append(f"{at}.secret_key: must be at least 16 characters")
            elif secret_digest(key) in secrets:
                problems.append(f"{at}: the same secret is used by another key")
            else:
                secrets.add(secret_digest(key))
        return problems

    def hash_secrets(self) -> None:
        """Keep only the sha256 of each key's secret: the plaintext is not held in memory
        after loading, nor handed to the map workers."""
        for key in self.api_keys:
            if key.secret_key:
                key.secret_key_sha256 = secret_digest(key)
                key.secret_key = ""


@dataclass(frozen=True, slots=True)
class ApiKey:
    project_id: str
    public_key: str
    secret_sha256: str  # hex


class KeyRing:
    """The configured keys; with none, every API is open (`is_open`)."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._by_digest = {key.secret_sha256: key for key in keys}
        self._by_public = {key.public_key: key for key in self._by_digest.values()}

    @classmethod
    def from_config(cls, keys: Iterable[ApiKeyConfig]) -> KeyRing:
        return cls(ApiKey(k.project_id, k.public_key, secret_digest(k)) for k in keys)

    @property
    def is_open(self) -> bool:
        return not self._by_digest

    def by_secret(self, secret: str) -> ApiKey | None:
        return self._by_digest.get(hashlib.sha256(secret.encode()).hexdigest())

    def by_basic(self, public_key: str, secret: str) -> ApiKey | None:
        key = self._by_public.get(public_key)
        digest = hashlib.sha256(secret.encode()).hexdigest()
        if key is None or not hmac.compare_digest(key.secret_sha256, digest):
            return None
        return key

    def by_authorization(self, header: str | None, schemes: Iterable[str]) -> ApiKey | None:
        """The key named by an `Authorization` header in one of `schemes` (basic, bearer)."""
        if not header:
            return None
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme not in schemes:
            return None
        if scheme == "bearer":
            return self.by_secret(value.strip())
        pair = _basic_pair(value.strip())
        return self.by_basic(*pair) if pair is not None else None


class UnauthenticatedError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class IngestAuth:
    """`receivers.otlp.auth`: which project an OTLP request's spans are filed under.

    off: credentials are ignored; optional: a known key names the project, no key
    means the default project, an unknown key is refused; required: a known key is
    needed. Keys are sent as `Authorization: Basic base64(public:secret)` or
    `Authorization: Bearer <secret>` (OTEL_EXPORTER_OTLP_HEADERS).
    """

    keys: KeyRing
    mode: str
    default_project: str

    def project(self, authorization: str | None) -> str:
        if self.mode == "off" or (self.keys.is_open and self.mode == "optional"):
            return self.default_project
        key = self.keys.by_authorization(authorization, ("basic", "bearer"))
        if key is not None:
            return key.project_id
        if authorization:
            raise UnauthenticatedError("unknown API key")
        if self.mode == "required":
            raise UnauthenticatedError("an API key is required (Authorization: Basic or Bearer)")
        return self.default_project


def _basic_pair(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    public_key, sep, secret = decoded.partition(":")
    return (public_key, secret) if sep else None
