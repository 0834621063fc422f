"""`malloc`: the bridge's threads share few malloc arenas (glibc), large blocks keep their
own mappings, and what a process built at start is out of the garbage collector's sight."""

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


_COUNT_MAPPINGS = """
import ctypes, sys
from session_bridge import malloc
if sys.argv[1] == "fixed":
    assert malloc.map_large_blocks()
big = bytearray(16 << 20)  # mapped; freeing it raises glibc's own threshold to 16 MiB
del big
kept = [bytearray(2 << 20) for _ in range(8)]  # from the heap, unless the threshold is fixed
ctypes.CDLL(None).malloc_stats()  # "max mmap regions = N" on stderr
"""


def _mappings(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _COUNT_MAPPINGS, mode], capture_output=True, text=True, check=True
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("max mmap regions"))
    return int(line.split("=")[1])


def test_large_blocks_keep_their_own_mappings() -> None:
    assert _mappings("default") < 8  # glibc's moving threshold: the 2 MiB blocks share the heap
    assert _mappings("fixed") >= 8


_FROZEN_AFTER_START = """
import gc
from session_bridge import malloc
import session_bridge.mapping.mapper  # what a process loads at start
before = gc.get_freeze_count()
malloc.freeze_startup_objects()
print(before, gc.get_freeze_count(), len(gc.get_objects(generation=2)))
"""


def test_startup_objects_leave_the_collectors_sight() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FROZEN_AFTER_START], capture_output=True, text=True, check=True
    )
    before, frozen, oldest = map(int, done.stdout.split())
    assert before == 0 and frozen > 10_000  # the modules' objects, no longer walked
    assert oldest < frozen // 10  # what a full collection still walks
