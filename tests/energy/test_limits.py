"""Time-of-use windows (in the site's zone, across DST), grid signals, margins and phase rotation helpers."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from apps.energy.limits import (
    ALL_DAYS,
    WEEKDAYS,
    GridSignal,
    TimeOfUseWindow,
    effective_limit,
    next_limit_change,
    rotation_from_ocpp,
)

INF = float("inf")
PEAK = TimeOfUseWindow(weekdays=WEEKDAYS, start=time(17), end=time(20), percent=60.0, label="peak")


def grid_power(at: datetime, **kwargs: object) -> float:
    return effective_limit(max_power_w=100_000, max_current_a=None, at=at, tz="Europe/Berlin", **kwargs).max_power_w  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # Winter (CET, UTC+1): 17:00-20:00 local is 16:00-19:00 UTC.
        (datetime(2026, 3, 27, 15, 59, tzinfo=UTC), 100_000),  # Fri 16:59 local
        (datetime(2026, 3, 27, 16, 0, tzinfo=UTC), 60_000),  # Fri 17:00 local
        (datetime(2026, 3, 27, 18, 59, tzinfo=UTC), 60_000),  # Fri 19:59 local
        (datetime(2026, 3, 27, 19, 0, tzinfo=UTC), 100_000),  # Fri 20:00 local: end is exclusive
        # Clocks go forward on Sunday 2026-03-29. Summer (CEST, UTC+2): 17:00-20:00 local is 15:00-18:00 UTC.
        (datetime(2026, 3, 30, 15, 0, tzinfo=UTC), 60_000),  # Mon 17:00 local
        (datetime(2026, 3, 30, 17, 59, tzinfo=UTC), 60_000),  # Mon 19:59 local
        (datetime(2026, 3, 30, 18, 0, tzinfo=UTC), 100_000),  # Mon 20:00 local (was inside in winter UTC terms)
        (datetime(2026, 3, 30, 14, 59, tzinfo=UTC), 100_000),  # Mon 16:59 local
        # Weekend: no peak window.
        (datetime(2026, 3, 28, 17, 0, tzinfo=UTC), 100_000),  # Sat 18:00 local
        # Clocks go back on Sunday 2026-10-25: Monday 26th is CET again.
        (datetime(2026, 10, 23, 15, 0, tzinfo=UTC), 60_000),  # Fri 17:00 CEST
        (datetime(2026, 10, 26, 15, 0, tzinfo=UTC), 100_000),  # Mon 16:00 CET
        (datetime(2026, 10, 26, 16, 0, tzinfo=UTC), 60_000),  # Mon 17:00 CET
    ],
)
def test_peak_window_follows_local_wall_time_across_dst(at: datetime, expected: float) -> None:
    assert grid_power(at, windows=[PEAK]) == pytest.approx(expected)


def test_window_in_the_skipped_spring_hour_never_applies_and_in_the_repeated_autumn_hour_applies_twice() -> None:
    night = TimeOfUseWindow(weekdays=frozenset({6}), start=time(2), end=time(3), percent=50.0)

    def active_minutes(day_start_utc: datetime) -> int:
        minutes = 0
        for m in range(0, 6 * 60):
            if grid_power(day_start_utc + timedelta(minutes=m), windows=[night]) < 100_000:
                minutes += 1
        return minutes

    # Sunday 2026-03-29: 02:00-03:00 local does not exist.
    assert active_minutes(datetime(2026, 3, 28, 22, 0, tzinfo=UTC)) == 0
    # Sunday 2026-10-25: 02:00-03:00 local happens twice (00:00-01:00 and 01:00-02:00 UTC).
    assert active_minutes(datetime(2026, 10, 24, 22, 0, tzinfo=UTC)) == 120


def test_window_past_midnight_belongs_to_the_day_it_starts() -> None:
    night = TimeOfUseWindow(weekdays=frozenset({4}), start=time(22), end=time(6), max_power_w=40_000)

    friday_23 = datetime(2026, 3, 6, 22, 0, tzinfo=UTC)  # Fri 23:00 CET
    saturday_05 = datetime(2026, 3, 7, 4, 0, tzinfo=UTC)  # Sat 05:00 CET
    saturday_23 = datetime(2026, 3, 7, 22, 0, tzinfo=UTC)  # Sat 23:00 CET (Saturday is not listed)
    friday_05 = datetime(2026, 3, 6, 4, 0, tzinfo=UTC)  # Fri 05:00 CET (belongs to Thursday's window)

    assert [grid_power(t, windows=[night]) for t in (friday_23, saturday_05, saturday_23, friday_05)] == [
        40_000,
        40_000,
        100_000,
        100_000,
    ]


def test_grid_signal_applies_inside_its_validity_and_expires() -> None:
    signal = GridSignal(
        valid_from=datetime(2026, 5, 4, 12, 0, tzinfo=UTC),
        valid_until=datetime(2026, 5, 4, 13, 0, tzinfo=UTC),
        max_power_w=30_000,
        source="dso",
    )

    before = grid_power(datetime(2026, 5, 4, 11, 59, tzinfo=UTC), signals=[signal])
    during = grid_power(datetime(2026, 5, 4, 12, 30, tzinfo=UTC), signals=[signal])
    at_expiry = grid_power(datetime(2026, 5, 4, 13, 0, tzinfo=UTC), signals=[signal])

    assert (before, during, at_expiry) == (100_000, 30_000, 100_000)


def test_latest_issued_signal_wins_and_can_lift_an_earlier_curtailment_but_not_the_static_limit() -> None:
    start = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    deep = GridSignal(start, start + timedelta(hours=2), max_power_w=20_000, issued_at=start - timedelta(hours=1))
    lifted = GridSignal(start, start + timedelta(hours=1), max_power_w=150_000, issued_at=start)

    assert grid_power(start + timedelta(minutes=30), signals=[lifted, deep]) == 100_000
    assert grid_power(start + timedelta(minutes=90), signals=[lifted, deep]) == 20_000


def test_margin_window_and_signal_combine_with_the_tightest_winning() -> None:
    at = datetime(2026, 3, 30, 16, 0, tzinfo=UTC)  # Mon 18:00 CEST, inside the peak window
    signal = GridSignal(at - timedelta(minutes=5), at + timedelta(minutes=5), max_current_a=50.0)

    eff = effective_limit(
        max_power_w=100_000,
        max_current_a=(160.0, 160.0, None),
        safety_margin_pct=10.0,
        windows=[PEAK],
        signals=[signal],
        at=at,
        tz="Europe/Berlin",
    )

    assert eff.max_power_w == pytest.approx(54_000)  # 100 kW x 60 % x 0.9
    assert eff.max_current_a == pytest.approx((45.0, 45.0, 45.0))  # min(96, 50) x 0.9 on L1/L2; L3 only the signal
    assert eff.sources[0] == "static"
    assert eff.sources[-1] == "margin 10%"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        effective_limit(max_power_w=1, max_current_a=None, at=datetime(2026, 1, 1, 12, 0))


def test_next_limit_change_finds_window_edges_in_local_time_across_dst() -> None:
    friday_evening = datetime(2026, 3, 27, 19, 30, tzinfo=UTC)  # Fri 20:30 CET, after the window

    first = next_limit_change(windows=[PEAK], after=friday_evening, tz="Europe/Berlin")
    second = next_limit_change(windows=[PEAK], after=first, tz="Europe/Berlin")  # type: ignore[arg-type]

    assert first == datetime(2026, 3, 30, 15, 0, tzinfo=UTC)  # Monday 17:00 CEST
    assert second == datetime(2026, 3, 30, 18, 0, tzinfo=UTC)  # Monday 20:00 CEST


def test_next_limit_change_includes_signal_edges() -> None:
    now = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    signal = GridSignal(now + timedelta(minutes=10), now + timedelta(minutes=40), max_power_w=1)

    assert next_limit_change(signals=[signal], after=now) == now + timedelta(minutes=10)
    assert next_limit_change(signals=[signal], after=now + timedelta(minutes=10)) == now + timedelta(minutes=40)
    assert next_limit_change(signals=[signal], after=now + timedelta(minutes=40)) is None
    assert next_limit_change(windows=[TimeOfUseWindow(ALL_DAYS, time(0), time(0))], after=now) is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("RST", (0, 1, 2)), ("STR", (1, 2, 0)), ("TRS", (2, 0, 1)), ("RTS", (0, 2, 1)), ("NotApplicable", (0, 1, 2))],
)
def test_ocpp_phase_rotation(value: str, expected: tuple[int, int, int]) -> None:
    assert rotation_from_ocpp(value) == expected
