"""What every exporter's configuration has (`exporters.<type>[/<name>]`): its queue,
batching, settle delay, time-out, health and retry settings."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field

from session_bridge.configkit import (
    ByteSize,
    Duration,
    DurationValue,
    NonNegative,
    Section,
    SizeValue,
)


class ExportRetryConfig(Section):
    initial_interval: DurationValue = Duration(1.0)
    max_interval: DurationValue = Duration(30.0)
    multiplier: NonNegative = 2.0
    randomization_factor: NonNegative = 0.5
    max_elapsed_time: DurationValue = Duration(0.0)  # 0: retry until delivered

    def check(self, path: str) -> list[str]:
        problems = []
        if self.multiplier < 1 or not 0 <= self.randomization_factor < 1:
            problems.append(f"{path}: multiplier >= 1, randomization_factor in [0, 1)")
        if self.initial_interval > self.max_interval:
            problems.append(f"{path}.initial_interval: must not exceed max_interval")
        return problems


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ExporterCommon(Section):
    """Settings every exporter has; `type` picks the exporter (see `EXPORTERS`)."""

    MAX_BATCH: ClassVar[int] = 64 << 20  # the largest max_batch_size the exporter accepts

    type: str = ""
    name: str = ""  # default: the type
    queue_capacity: SizeValue = ByteSize(1024**3)
    max_batch_size: SizeValue = ByteSize(4 * 1024 * 1024)
    # the longest a span waits for others to join its request, as long as the Collector's
    # batch processor waits; under load a request fills well before
    flush_interval: DurationValue = Duration(0.2)
    settle_delay: DurationValue = Duration(2.0)
    timeout: DurationValue = Duration(30.0)
    unhealthy_after: DurationValue = Duration(300.0)
    retry: ExportRetryConfig = Field(default_factory=ExportRetryConfig)

    @property
    def label(self) -> str:
        """The exporter's name: in metrics, logs, the export log and the dead-letter store."""
        return self.name or self.type

    def check(self, path: str) -> list[str]:
        problems = []
        if not _NAME.match(self.label):
            problems.append(f"{path}.name: use letters, digits, _ . - (got {self.label!r})")
        if not 1024 <= self.max_batch_size <= self.MAX_BATCH:
            problems.append(
                f"{path}.max_batch_size: must be between 1024 and {self.MAX_BATCH} bytes"
            )
        if self.queue_capacity < self.max_batch_size:
            problems.append(f"{path}.queue_capacity: must be at least max_batch_size")
        if self.timeout <= 0:
            problems.append(f"{path}.timeout: must be more than 0")
        return problems
