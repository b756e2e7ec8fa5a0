"""Shared hypothesis strategies for the pure core (attrs keeps them in one file, so do we)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from agent.analysis.catalog import CATALOG, MetricSpec
from agent.analysis.series import Series

finite = st.floats(allow_nan=False, allow_infinity=False)
"""Any finite float, down to subnormals and up to ±1.8e308."""
wire_finite = st.floats(min_value=-1e15, max_value=1e15, allow_nan=False)
"""What the wire's ``Finite`` lets through."""
specs: st.SearchStrategy[MetricSpec] = st.sampled_from(list(CATALOG.values()))
ratios = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
epoch = st.floats(min_value=946_684_800, max_value=4_102_444_800, allow_nan=False)


@st.composite
def series(draw: st.DrawFn, values: st.SearchStrategy[float] = finite) -> Series:
    """A time-sorted series of 0–40 samples; times may repeat, values may be extreme."""
    pairs = draw(st.lists(st.tuples(epoch, values), max_size=40))
    pairs.sort(key=lambda p: p[0])
    return Series(
        ts=np.array([t for t, _ in pairs], dtype=np.float64),
        values=np.array([v for _, v in pairs], dtype=np.float64),
    )
