"""Request patterns: a hand-computed two-day data set, as counters and as rates, and properties."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.analysis.patterns import TIME_BOUND, Labels, request_patterns
from agent.analysis.series import FloatArray, Series
from protocols.messages import PeakPeriod, RequestPatterns, TrafficShare
from tests.strategies import labelled_series

H = 3600.0
DAY0 = datetime(2026, 11, 26, tzinfo=UTC).timestamp()
FEED_EU: Labels = (("endpoint", "/api/feed"), ("region", "eu"))
FEED_US: Labels = (("endpoint", "/api/feed"), ("region", "us"))
CHAT_US: Labels = (("endpoint", "/api/chat"), ("region", "us"))


def _hourly_rates() -> dict[Labels, FloatArray]:
    """Mean req/s over each of the 48 hours (index h covers [DAY0 + h·H, DAY0 + (h+1)·H)).

    /api/feed eu: 1 req/s, 4 in hours 9–10, 3 in hours 23–0; /api/feed us and
    /api/chat us: 0.5 req/s. The chat counter resets in hour 29 (day 2, 05:00): the
    sample after it reads 1000, so that hour counts 1000 requests, not 1800.
    """
    hour_of_day = np.arange(48) % 24
    feed_eu = np.ones(48)
    feed_eu[np.isin(hour_of_day, [9, 10])] = 4.0
    feed_eu[np.isin(hour_of_day, [23, 0])] = 3.0
    chat = np.full(48, 0.5)
    chat[29] = 1000.0 / H
    return {FEED_EU: feed_eu, FEED_US: np.full(48, 0.5), CHAT_US: chat}


def _counters() -> dict[Labels, Series]:
    ts = DAY0 + np.arange(49) * H
    counters = {}
    for labels, rates in _hourly_rates().items():
        values = np.concatenate(([0.0], np.cumsum(rates * H)))
        if labels == CHAT_US:
            values[30:] -= values[29]  # the reset: from 52 200 down to 1 000, then on from there
        counters[labels] = Series(ts=ts, values=values)
    assert counters[CHAT_US].values[29] == 52_200.0
    assert counters[CHAT_US].values[30] == 1_000.0
    return counters


def _rates() -> dict[Labels, Series]:
    ts = DAY0 + np.arange(1, 49) * H  # each sample is the rate over the hour ending at it
    return {labels: Series(ts=ts, values=rates) for labels, rates in _hourly_rates().items()}


_RNG = np.random.default_rng(7)
LATENCIES: dict[Labels, Series] = {
    FEED_EU: Series(ts=DAY0 + np.arange(40) * H, values=_RNG.gamma(4.0, 20.0, 40)),
    FEED_US: Series(ts=DAY0 + np.arange(30) * H, values=_RNG.gamma(4.0, 40.0, 30)),
    (("endpoint", "/api/chat"),): Series(
        ts=DAY0 + np.arange(20) * H, values=_RNG.gamma(2.0, 5.0, 20)
    ),
    (("endpoint", "/api/unused"),): Series(ts=DAY0 + np.arange(5) * H, values=np.ones(5)),
}

# Per day: feed eu 20·3600 + 2·14 400 + 2·10 800 = 122 400; feed us 43 200; chat 43 200.
# Over two days, less the 800 requests the reset hour did not see: 416 800.
TOTAL = 2 * 122_400.0 + 2 * 43_200.0 + 2 * 43_200.0 - 800.0
# Per hour of day: 2 req/s, 5 in 9–10, 4 in 23–0, hour 5 (7200 + 6400) / 7200 on average.
HOUR_MEAN = (19 * 2.0 + (7200.0 + 6400.0) / 7200.0 + 2 * 5.0 + 2 * 4.0) / 24


def _peak(p: PeakPeriod) -> tuple[int, int, float, float]:
    return p.start_hour, p.end_hour, p.mean_rate, p.ratio_to_mean


def _check(patterns: RequestPatterns | None) -> RequestPatterns:
    assert patterns is not None
    assert patterns.total_requests == pytest.approx(TOTAL)
    assert patterns.mean_rate == pytest.approx(TOTAL / (48 * H))
    assert [_peak(p) for p in patterns.peak_periods] == [
        (9, 10, pytest.approx(5.0), pytest.approx(5.0 / HOUR_MEAN)),
        (23, 0, pytest.approx(4.0), pytest.approx(4.0 / HOUR_MEAN)),
    ]
    feed = 2 * 122_400.0 + 2 * 43_200.0
    chat = 2 * 43_200.0 - 800.0
    assert [(e.name, e.requests, e.share_pct) for e in patterns.endpoints] == [
        ("/api/feed", pytest.approx(feed), pytest.approx(100 * feed / TOTAL)),
        ("/api/chat", pytest.approx(chat), pytest.approx(100 * chat / TOTAL)),
    ]
    eu = 2 * 122_400.0
    assert [(r.name, r.requests) for r in patterns.regions] == [
        ("eu", pytest.approx(eu)),
        ("us", pytest.approx(TOTAL - eu)),
    ]
    return patterns


def _percentiles(*series: Series) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(np.concatenate([s.values for s in series]), [50, 95, 99])
    return float(p50), float(p95), float(p99)


def _latency(share: TrafficShare) -> tuple[float | None, float | None, float | None]:
    return share.p50_ms, share.p95_ms, share.p99_ms


def test_counters_with_a_reset() -> None:
    patterns = _check(request_patterns(_counters(), LATENCIES, requests_are_counters=True))
    feed, chat = patterns.endpoints
    assert _latency(feed) == pytest.approx(_percentiles(LATENCIES[FEED_EU], LATENCIES[FEED_US]))
    assert _latency(chat) == pytest.approx(_percentiles(LATENCIES[(("endpoint", "/api/chat"),)]))
    eu, us = patterns.regions
    # The chat latencies carry no region: us is /api/feed us alone.
    assert _latency(us) == pytest.approx(_percentiles(LATENCIES[FEED_US]))
    assert _latency(eu) == pytest.approx(_percentiles(LATENCIES[FEED_EU]))


def test_rates_give_the_same_patterns() -> None:
    _check(request_patterns(_rates(), LATENCIES, requests_are_counters=False))


def test_endpoint_without_latency_samples_has_no_percentiles() -> None:
    patterns = request_patterns(_counters(), {}, requests_are_counters=True)
    assert patterns is not None
    assert all(_latency(e) == (None, None, None) for e in patterns.endpoints)


def test_sparse_samples_spread_over_the_hours_they_cover() -> None:
    # A steady 2 req/s sampled every 3 hours: no hour of day stands out.
    ts = DAY0 + np.arange(17) * 3 * H
    patterns = request_patterns(
        {FEED_EU: Series(ts=ts, values=np.arange(17) * 3 * H * 2.0)}, {}, requests_are_counters=True
    )
    assert patterns is not None
    assert patterns.mean_rate == pytest.approx(2.0)
    assert patterns.peak_periods == []


def test_less_than_two_hours_of_day_gives_no_peak_periods() -> None:
    ts = DAY0 + 10 * H + np.arange(0, 1800, 60.0)
    patterns = request_patterns(
        {FEED_EU: Series(ts=ts, values=np.arange(ts.size) * 100.0)}, {}, requests_are_counters=True
    )
    assert patterns is not None
    assert patterns.total_requests == pytest.approx((ts.size - 1) * 100.0)
    assert patterns.mean_rate == pytest.approx(100.0 / 60.0)
    assert patterns.peak_periods == []


def test_no_request_samples_is_none() -> None:
    empty = Series(ts=np.array([]), values=np.array([]))
    scalar = Series(ts=np.array([math.nan]), values=np.array([5.0]), scalar=True)
    for flag in (True, False):
        assert request_patterns({}, LATENCIES, requests_are_counters=flag) is None
        assert request_patterns({FEED_EU: empty}, {}, requests_are_counters=flag) is None
        assert request_patterns({FEED_EU: scalar}, {}, requests_are_counters=flag) is None


def _finite_numbers(patterns: RequestPatterns) -> list[float]:
    numbers = [patterns.total_requests, patterns.mean_rate]
    numbers += [x for p in patterns.peak_periods for x in (p.mean_rate, p.ratio_to_mean)]
    for share in (*patterns.endpoints, *patterns.regions):
        numbers += [share.requests, share.share_pct]
        numbers += [x for x in _latency(share) if x is not None]
    return numbers


@given(requests=labelled_series, latencies=labelled_series, counters=st.booleans())
def test_any_finite_input_gives_finite_patterns(
    requests: dict[Labels, Series], latencies: dict[Labels, Series], counters: bool
) -> None:
    patterns = request_patterns(requests, latencies, requests_are_counters=counters)
    if patterns is None:
        assert not any((np.abs(s.ts) <= TIME_BOUND).any() for s in requests.values())
        return
    assert all(math.isfinite(x) for x in _finite_numbers(patterns))
    assert patterns.total_requests >= 0.0
    for share in (*patterns.endpoints, *patterns.regions):
        assert 0.0 <= share.share_pct <= 100.0 + 1e-9
    for period in patterns.peak_periods:
        assert 0 <= period.start_hour <= 23
        assert 0 <= period.end_hour <= 23
        assert period.ratio_to_mean >= 1.25 - 1e-9
