"""What compiled code keeps: memory still allocated after many calls."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable


def bytes_kept(run: Callable[[int], None], warm: int, times: int) -> int:
    """The bytes still allocated (as tracemalloc sees them) after `run(times)`, measured
    once `run(warm)` has filled caches and free lists."""
    run(warm)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run(times)
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
