"""Exponential backoff with jitter, never shorter than the server's own say."""

from __future__ import annotations

import random

from session_bridge.export.common import ExportRetryConfig

MAX_SERVER_DELAY_S = 3600.0  # a Retry-After beyond this is taken as this


class Backoff:
    """Delays before successive retries: initial * multiplier^n, capped, +/- jitter, and
    never shorter than what the server asked for."""

    def __init__(self, config: ExportRetryConfig, rng: random.Random | None = None) -> None:
        self._config = config
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self, server_delay_s: float | None = None) -> float:
        cfg = self._config
        base = min(cfg.initial_interval * cfg.multiplier**self._attempt, cfg.max_interval)
        self._attempt += 1
        jitter = cfg.randomization_factor * self._rng.uniform(-1.0, 1.0)
        delay = base * (1.0 + jitter)
        if server_delay_s is not None:
            delay = max(delay, min(server_delay_s, MAX_SERVER_DELAY_S))
        return delay
