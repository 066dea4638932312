"""How often a drorch process runs CPython's cyclic garbage collector.

A backup or restore holds hundreds of thousands of long-lived objects that form
no cycles: the index's blobs, a restore's plan, directory memos, tree nodes.
With CPython's default thresholds (700, 10, 10) the collector ran every 700
allocations and re-traversed them: 3-4 % of a backup's CPU, most of it on the
thread that walks the source, and 0.05-0.25 s of a 3.3 s restore of 888 MiB in
20,000 files (``gc_collect_main``, ``visit_decref``; measured with perf).

Collecting every 50,000 allocations instead keeps cycles (tracebacks, mostly)
bounded to a few MiB. Reference counting still frees everything else at once.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 100)


def tune_collector() -> None:
    """Once, where a drorch process starts (the CLI, a helper process)."""
    gc.set_threshold(*THRESHOLDS)
