"""Which project a query API request may read: FastAPI dependencies over the `KeyRing`.

Each API takes the schemes its reference takes: HTTP Basic `public:secret` for the
Langfuse-style API, `Bearer <secret>` for the agent traces and `/api/v1` APIs,
`Galileo-API-Key: <secret>` (or Bearer) for the Galileo-style search. With no key
configured every API is open. Otherwise: no or an unknown credential -> 401; a
key of another project than the one in the path -> 404, as for anything that
does not exist, so no answer tells a project's data apart from nothing.
"""

from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any

from fastapi import HTTPException, Path, Request, Security
from fastapi.openapi.models import APIKey, APIKeyIn, HTTPBase, HTTPBearer
from fastapi.openapi.models import SecurityBase as SecurityModel
from fastapi.security.base import SecurityBase

from session_bridge.api.errors import not_found
from session_bridge.keys import PROJECT_ID_PATTERN, ApiKey, KeyRing


class Scheme(Enum):
    BASIC = "basic"
    BEARER = "bearer"
    GALILEO = "galileo"


_REALM = 'realm="otel-session-bridge"'
# how a person sends each scheme's key (the 401 says this, not the OpenAPI scheme names)
_HOW = {
    Scheme.BASIC: "Authorization: Basic base64(public_key:secret_key)",
    Scheme.BEARER: "Authorization: Bearer <secret key>",
    Scheme.GALILEO: "Galileo-API-Key: <secret key>",
}
_CHALLENGES = {Scheme.BASIC: f"Basic {_REALM}", Scheme.BEARER: f"Bearer {_REALM}"}


class _Credential(SecurityBase):
    """Declares one scheme in the OpenAPI document and hands its raw header over."""

    def __init__(self, model: SecurityModel, scheme_name: str, header: str) -> None:
        self.model = model
        self.scheme_name = scheme_name
        self.header = header

    async def __call__(self, request: Request) -> str | None:
        return request.headers.get(self.header)


class ApiAuth:
    def __init__(self, keys: KeyRing, default_project: str) -> None:
        self.keys = keys
        self.default_project = default_project
        self._credentials = {
            Scheme.BASIC: _Credential(
                HTTPBase(scheme="basic", description="public_key:secret_key"),
                "basicAuth",
                "Authorization",
            ),
            Scheme.BEARER: _Credential(
                HTTPBearer(description="the secret key"), "bearerAuth", "Authorization"
            ),
            Scheme.GALILEO: _Credential(
                APIKey.model_validate(
                    {
                        "in": APIKeyIn.header,
                        "name": "Galileo-API-Key",
                        "description": "the secret key",
                    }
                ),
                "galileoApiKey",
                "Galileo-API-Key",
            ),
        }

    def documented(self, *schemes: Scheme) -> list[Any]:
        """Route dependencies that declare `schemes` in the OpenAPI document."""
        return [Security(self._credentials[s]) for s in schemes]

    def key_project(self, *schemes: Scheme) -> Callable[[Request], str]:
        """A dependency: the project of the request's key (open: the default project)."""

        def project(request: Request) -> str:
            if self.keys.is_open:
                return self.default_project
            return self._authenticate(request, schemes).project_id

        return project

    def any_key(self, request: Request) -> None:
        """A dependency for what belongs to no project (/metrics, /openapi.json): any
        configured key, in any scheme (open: nothing needed)."""
        if not self.keys.is_open:
            self._authenticate(request, (Scheme.BEARER, Scheme.BASIC, Scheme.GALILEO))

    def path_project(self, alias: str, *schemes: Scheme) -> Callable[..., str]:
        """A dependency: the project named in the path, which the key must belong to."""

        def project(
            request: Request,
            project_id: Annotated[
                str,
                Path(alias=alias, pattern=PROJECT_ID_PATTERN, description="Project id"),
            ],
        ) -> str:
            if not self.keys.is_open and self._authenticate(request, schemes).project_id != (
                project_id
            ):
                raise not_found(f"project {project_id!r}")
            return project_id

        return project

    def _authenticate(self, request: Request, schemes: tuple[Scheme, ...]) -> ApiKey:
        headers = request.headers
        key = None
        for scheme in schemes:
            if scheme is Scheme.GALILEO:
                secret = headers.get(self._credentials[scheme].header)
                key = self.keys.by_secret(secret) if secret else None
            else:
                key = self.keys.by_authorization(headers.get("authorization"), (scheme.value,))
            if key is not None:
                return key
        how = " or ".join(_HOW[s] for s in schemes)
        challenge = _CHALLENGES.get(schemes[0], _CHALLENGES[Scheme.BEARER])
        raise HTTPException(
            401, f"a valid API key is required: send {how}", {"WWW-Authenticate": challenge}
        )
