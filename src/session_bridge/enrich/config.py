"""`enrich:`, `pricing:` and `privacy:` — what the enrich stage adds to each record, and
what it keeps of it."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import Field

from session_bridge.configkit import NonNegative, Section, Strings, one_of


class UserAgentConfig(Section):
    enabled: bool = True


class GeoIpConfig(Section):
    databases: Strings = Field(default_factory=list)

    def check(self, path: str) -> list[str]:
        return [
            f"{path}.databases[{index}]: no such file: {name}"
            for index, name in enumerate(self.databases)
            if not Path(name).expanduser().is_file()
        ]


class ClientAddressConfig(Section):
    from_request: bool = False
    trusted_proxies: Strings = Field(default_factory=list)

    def check(self, path: str) -> list[str]:
        problems = []
        for index, network in enumerate(self.trusted_proxies):
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                problems.append(f"{path}.trusted_proxies[{index}]: not an IP network: {network!r}")
        return problems


class CostConfig(Section):
    enabled: bool = True


class EnrichConfig(Section):
    user_agent: UserAgentConfig = Field(default_factory=UserAgentConfig)
    geoip: GeoIpConfig = Field(default_factory=GeoIpConfig)
    client_address: ClientAddressConfig = Field(default_factory=ClientAddressConfig)
    cost: CostConfig = Field(default_factory=CostConfig)


class ModelPriceConfig(Section):
    input_per_mtok: NonNegative = 0.0
    output_per_mtok: NonNegative = 0.0
    cached_input_per_mtok: NonNegative | None = None
    cache_write_per_mtok: NonNegative | None = None

    def check(self, path: str) -> list[str]:
        if self.input_per_mtok == 0 and self.output_per_mtok == 0:
            return [f"{path}: set input_per_mtok and/or output_per_mtok"]
        return []


class PricingConfig(Section):
    models: dict[str, ModelPriceConfig] = Field(default_factory=dict)

    def check(self, path: str) -> list[str]:
        if any(not model.strip() for model in self.models):
            return [f"{path}.models: a model name is empty"]
        return []


class PrivacyConfig(Section):
    pseudonymize_user_id: bool = False
    user_id_key: str = ""
    client_ip: Annotated[str, one_of("keep", "truncate", "drop")] = "keep"

    def check(self, path: str) -> list[str]:
        if self.pseudonymize_user_id and len(self.user_id_key.encode()) < 16:
            return [
                f"{path}.user_id_key: must be at least 16 bytes when {path}.pseudonymize_user_id"
                " is true (use ${env:VAR} to keep it out of the file)"
            ]
        return []
