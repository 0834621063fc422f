"""`malloc.limit_arenas`: the bridge's threads share few malloc arenas (glibc)."""

from __future__ import annotations

import subprocess
import sys

_COUNT_ARENAS = """
import ctypes, sys, threading
from session_bridge import malloc
if sys.argv[1] == "limited":
    assert malloc.limit_arenas(2)
barrier = threading.Barrier(8)
kept = []
def allocate():
    kept.append(bytearray(200_000))  # from malloc, in this thread's arena
    barrier.wait()  # all threads alive at once: none can reuse another's arena
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


def _arenas(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _COUNT_ARENAS, mode], capture_output=True, text=True, check=True
    )
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_threads_share_at_most_the_arenas_allowed() -> None:
    assert _arenas("default") > 2  # glibc's default: an arena per thread, here
    assert 1 <= _arenas("limited") <= 2
