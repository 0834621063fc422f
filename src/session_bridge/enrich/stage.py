"""The enrich stage: completes each record's client, geo and cost, then applies privacy.

One pass per span, in this order: the user agent is parsed; a span without a
client address may take the OTLP request's (when configured); geo fields the
attributes did not give are looked up from the client IP; then the IP is
truncated or dropped and the user id pseudonymised (when configured); last, an
LLM call without a sender-reported cost gets an estimate. Every lookup is cached.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from session_bridge.enrich.client_address import RequestInfo
from session_bridge.enrich.config import EnrichConfig, PricingConfig, PrivacyConfig
from session_bridge.enrich.geoip import GeoIpLookup
from session_bridge.enrich.pricing import ModelPrice, PriceBook
from session_bridge.enrich.privacy import UserIdPseudonymizer, truncate_ip
from session_bridge.enrich.scrub import SpanScrubber
from session_bridge.enrich.useragent import UserAgentParser
from session_bridge.mapping.mapper import MappedRequest
from session_bridge.model import ClientInfo, GeoInfo, SpanRecord
from session_bridge.telemetry import BridgeMetrics

log = logging.getLogger(__name__)


# how the start-up line says what `privacy.client_ip` does
_IP_POLICY_WORDS = {"keep": "kept", "truncate": "truncated", "drop": "dropped"}


class EnrichSections(Protocol):
    """The configuration sections the enrich stage reads (the bridge's configuration, or
    the cut-down one a map worker gets)."""

    @property
    def enrich(self) -> EnrichConfig: ...
    @property
    def pricing(self) -> PricingConfig: ...
    @property
    def privacy(self) -> PrivacyConfig: ...


class Enricher:
    def __init__(self, config: EnrichSections, metrics: BridgeMetrics) -> None:
        enrich = config.enrich
        self._metrics = metrics
        self._user_agents = UserAgentParser() if enrich.user_agent.enabled else None
        self._geoip = (
            GeoIpLookup([Path(p).expanduser() for p in enrich.geoip.databases])
            if enrich.geoip.databases
            else None
        )
        self._from_request = enrich.client_address.from_request
        overrides = {
            model: ModelPrice(
                input_per_mtok=price.input_per_mtok,
                output_per_mtok=price.output_per_mtok,
                cached_input_per_mtok=price.cached_input_per_mtok,
                cache_write_per_mtok=price.cache_write_per_mtok,
            )
            for model, price in config.pricing.models.items()
        }
        self._prices = PriceBook(overrides) if enrich.cost.enabled else None
        privacy = config.privacy
        self._pseudonymize = (
            UserIdPseudonymizer(privacy.user_id_key.encode())
            if privacy.pseudonymize_user_id
            else None
        )
        self._ip_policy = privacy.client_ip
        self._scrubber = SpanScrubber(self._pseudonymize, self._ip_policy)

    def describe(self) -> list[str]:
        """Start-up lines saying what is enriched and how."""
        geo = self._geoip.describe() if self._geoip else "off (no enrich.geoip.databases)"
        return [
            f"user agents: {'parsed' if self._user_agents else 'off'}",
            f"geo: {geo}",
            f"cost: {'estimated with genai-prices' if self._prices else 'off'}",
            f"privacy: user ids {'pseudonymised' if self._pseudonymize else 'kept'},"
            f" client IPs {_IP_POLICY_WORDS[self._ip_policy]}",
        ]

    def enrich(self, records: list[SpanRecord], request: RequestInfo) -> None:
        unpriced = 0
        for record in records:
            client = record.client
            if self._from_request and request.client_ip and (client is None or client.ip is None):
                client = record.client = client or ClientInfo()
                client.ip = request.client_ip
            if client is not None:
                self._complete_client(record, client)
            if self._pseudonymize is not None and record.user_id:
                record.user_id = self._pseudonymize(record.user_id)
            llm = record.llm
            if llm is not None and self._prices is not None:
                record.cost_usd = self._prices.cost(llm, record.start_ns)
                if record.cost_usd is None:
                    unpriced += 1
        if unpriced:
            self._metrics.unpriced_llm_calls.inc(unpriced)

    def scrub(self, mapped: MappedRequest) -> None:
        """The privacy rules applied to the spans as stored too (`enrich/scrub.py`)."""
        self._scrubber.scrub(mapped)

    def _complete_client(self, record: SpanRecord, client: ClientInfo) -> None:
        if client.user_agent and self._user_agents is not None:
            parsed = self._user_agents.parse(client.user_agent)
            client.device_type = parsed.device_type
            client.os = parsed.os
            client.browser = parsed.browser
            client.browser_version = parsed.browser_version
        if client.ip is None:
            return
        if self._geoip is not None:
            record.geo = _fill_geo(record.geo, self._geoip.lookup(client.ip))
        if self._ip_policy == "truncate":
            client.ip = truncate_ip(client.ip)
        elif self._ip_policy == "drop":
            client.ip = None
        if client.is_empty() and client.device_type is None:
            record.client = None

    def close(self) -> None:
        if self._geoip is not None:
            self._geoip.close()


def _fill_geo(given: GeoInfo | None, looked_up: GeoInfo | None) -> GeoInfo | None:
    """Attributes win; the lookup fills the fields they left empty, if the country agrees."""
    if looked_up is None:
        return given
    if given is None:
        return looked_up
    if (
        given.country_code
        and looked_up.country_code
        and given.country_code != looked_up.country_code
    ):
        return given
    merged = GeoInfo()
    for name in GeoInfo.__slots__:
        value = getattr(given, name)
        setattr(merged, name, value if value is not None else getattr(looked_up, name))
    return merged
