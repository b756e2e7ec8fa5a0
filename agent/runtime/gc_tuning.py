"""The garbage collector of a long-running agent process (and of its strategy workers).

The bus work allocates many short-lived objects (messages, futures, dicts). At CPython's
default young-generation threshold (700 allocations) the collections they set off fell
mostly inside the strategies that ran meanwhile, and the older generations' walks covered
everything the imports and startup made. Measured on 2 cores, three alternated pairs: with
the startup objects frozen and ``YOUNG_THRESHOLD``, the strategies took 1.01–1.13× their
CPU alone instead of 1.10–1.28×, and the rest of an answer ~0.9 ms instead of 1.0–1.2.
``scripts/bench.py`` measures the strategy alone under the same settings.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Allocations between two young-generation collections (CPython's default: 700)."""


def tune_gc() -> None:
    """Freeze what exists now (it lives as long as the process) and collect the young
    generation less often; call once startup is done."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
