"""`malloc`: the bridge's threads share few malloc arenas (glibc), large blocks reuse the
heap's pages up to a fixed limit, and what a process built at start is out of the garbage
collector's sight."""

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


_FAULTS = """
import ctypes, resource, sys
from session_bridge import malloc
if sys.argv[1] == "reuse":
    assert malloc.reuse_large_blocks()
else:
    assert ctypes.CDLL(None).mallopt(-3, 256 * 1024)  # each such block its own mapping
def request():  # a 1 MiB block (too small for a huge page), every page written, then freed
    block = b"x" * (1 << 20)
    del block
request()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    request()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_large_blocks_reuse_the_same_pages() -> None:
    assert _faults("mapped") >= 50 * 250  # fresh pages for every block: 256 faults each
    assert _faults("reuse") < 250  # the heap's pages, faulted in once


_MAPPED_BYTES = """
import ctypes, sys
from session_bridge import malloc
if sys.argv[1] == "reuse":
    assert malloc.reuse_large_blocks()
big = bytes(24 << 20)  # mapped; glibc alone then keeps blocks up to 24 MiB in the heap
del big
kept = [b"x" * (20 << 20) for _ in range(3)]  # past the limit: mapped all the same
ctypes.CDLL(None).malloc_stats()  # "max mmap bytes = N" on stderr
"""


def _mapped_bytes(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _MAPPED_BYTES, mode], capture_output=True, text=True, check=True
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("max mmap bytes"))
    return int(line.split("=")[1])


def test_what_a_process_keeps_stays_bounded() -> None:
    assert _mapped_bytes("default") < 40 << 20  # glibc's moving threshold: in the heap
    assert _mapped_bytes("reuse") >= 60 << 20  # mapped, and returned when freed


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


def test_the_bridge_does_not_load_httpx_command_line() -> None:
    # (rich and pygments are installed beside the tests: httpx would load them)
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, session_bridge.server, httpx; print(sorted(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "'httpx'" in loaded
    assert "'rich'" not in loaded and "'pygments'" not in loaded
