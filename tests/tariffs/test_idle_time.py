"""Idle (parking) time from evidence: what the charger said (SuspendedEV, Finishing) or a register that stood
still over metering intervals, never the seconds between the last reading and the StopTransaction; and the
grace period before idle fees start. Costs worked out by hand in the comments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from typing import Any

import pytest

from apps.tariffs.pricing import (
    CostBreakdown,
    IdleSpan,
    MeterSample,
    PricingError,
    QuoteRequest,
    StatusChange,
    charging_periods_from_samples,
    idle_spans,
    price_session,
    quote,
    tariff_from_ocpi,
)

TZ = "Europe/Berlin"
T0 = dt.datetime(2026, 3, 9, 9, 0, tzinfo=dt.UTC)  # a Monday, 10:00 in Berlin

# the demo's STANDARD tariff: 0.39/kWh, 0.60/h charging (step 60 s), 6.00/h parking (step 900 s)
STANDARD = tariff_from_ocpi(
    {
        "currency": "EUR",
        "elements": [
            {
                "price_components": [
                    {"type": "ENERGY", "price": "0.39", "vat": "19", "step_size": 1},
                    {"type": "TIME", "price": "0.60", "vat": "19", "step_size": 60},
                    {"type": "PARKING_TIME", "price": "6.00", "vat": "19", "step_size": 900},
                ]
            }
        ],
    }
)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def readings(*points: tuple[float, int] | tuple[float, int, int]) -> list[MeterSample]:
    return [MeterSample(at(p[0]), D(p[1]), D(p[2]) if len(p) > 2 else None) for p in points]


def statuses(*points: tuple[float, str]) -> list[StatusChange]:
    return [StatusChange(at(m), s) for m, s in points]


def price(
    meter: list[MeterSample],
    stop: dt.datetime,
    changes: list[StatusChange] = (),
    **kwargs: Any,  # type: ignore[assignment]
) -> tuple[list[IdleSpan], CostBreakdown]:
    """Priced as completion does: `meter` are the readings the charger sent (start register first); the
    StopTransaction's register (= the last reading) is added at `stop`."""
    idle = idle_spans(samples=meter, statuses=changes, start=T0, stop=stop)
    samples = [*meter, MeterSample(stop, meter[-1].energy_wh)]
    periods = charging_periods_from_samples(
        tariff=STANDARD, samples=samples, start=T0, stop=stop, time_zone=TZ, idle=idle
    )
    return idle, price_session(STANDARD, periods, end=stop, time_zone=TZ, vat_rate=D(19), **kwargs)


def groups(result: CostBreakdown) -> dict[str, str]:
    return {k: str(v[0]) for k, v in result.by_dimension.items()}


def test_the_seconds_between_the_last_reading_and_the_stop_are_not_parking() -> None:
    # the demo's chargers: a reading every minute while charging at 11 kW, StopTransaction 0.05 s after the last
    # one with the same register. Before: those 0.05 s were parking, rounded up to a 15-minute block (1.50).
    meter = readings(*((m, 1_000_000 + m * 11000 // 60) for m in range(0, 31)))
    stop = at(30) + dt.timedelta(milliseconds=50)

    idle, result = price(meter, stop, statuses((0, "Charging")))

    # 5.5 kWh x 0.39 = 2.145 -> 2.15; 30 min 0.05 s -> 31 min (step 60 s) x 0.60/h = 0.31
    assert idle == []
    assert groups(result) == {"ENERGY": "2.15", "TIME": "0.31"}
    assert result.total_parking_time == D(0)


def test_suspended_ev_starts_parking_and_charging_ends_it() -> None:
    # charging 10:00-10:40, SuspendedEV at 10:40 (car full), Charging again 10:50 (preconditioning top-up),
    # SuspendedEV 10:55 until the stop at 11:25: idle 10 min + 30 min = 40 min
    meter = readings((0, 0), (40, 7000), (50, 7000), (55, 7100), (85, 7100))
    changes = statuses((0, "Charging"), (40, "SuspendedEV"), (50, "Charging"), (55, "SuspendedEV"))

    idle, result = price(meter, at(85), changes)

    assert [(s.start, s.end, s.evidence) for s in idle] == [
        (at(40), at(50), "status:SuspendedEV+meter"),  # the meter stood still from 40 to 50 min too
        (at(55), at(85), "status:SuspendedEV"),
    ]
    # 40 min idle, no grace: 40 -> 45 min (step 900) x 6.00/h = 4.50
    assert groups(result)["PARKING_TIME"] == "4.50"
    assert result.total_parking_time == D("0.666667")


def test_status_evidence_alone_and_the_grace_period_per_idle_stretch() -> None:
    # charging 0-40 min (readings only at start and 40 min), SuspendedEV 40-50, Charging 50-55,
    # SuspendedEV from 55 until the stop at 95: idle stretches of 10 and 40 min; 15 min grace each:
    # billed 0 + 25 min parking -> 30 min (step 900) x 6.00/h = 3.00
    meter = readings((0, 0), (40, 7000), (55, 7300))
    changes = statuses((0, "Charging"), (40, "SuspendedEV"), (50, "Charging"), (55, "SuspendedEV"))

    idle, result = price(meter, at(95), changes, parking_grace_seconds=15 * 60)

    assert [(s.start, s.end, s.evidence) for s in idle] == [
        (at(40), at(50), "status:SuspendedEV"),
        (at(55), at(95), "status:SuspendedEV"),
    ]
    parking = [x for x in result.lines if x.group == "PARKING_TIME"]
    assert [(x.volume, x.billed_volume, x.excl_vat) for x in parking] == [(D(25 * 60), D(30 * 60), D("3.00"))]
    # parking time in the totals is all idle time, grace included: 50 min
    assert result.total_parking_time == D("0.833333")


def test_idle_inside_the_grace_period_costs_nothing() -> None:
    meter = readings((0, 0), (60, 11000))

    _, result = price(meter, at(70), statuses((60, "Finishing")), parking_grace_seconds=15 * 60)

    assert "PARKING_TIME" not in groups(result)
    assert result.total_parking_time == D("0.166667")


def test_suspended_evse_is_the_chargers_pause_not_idle_time() -> None:
    meter = readings((0, 0), (30, 5000))

    idle, _ = price(meter, at(60), statuses((0, "Charging"), (30, "SuspendedEVSE")))

    assert idle == []


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        # the register stands still from 30 to 32 min over two readings: idle from 30 min to the stop
        (((0, 0), (30, 5500), (31, 5500), (32, 5500)), [(30, 40)]),
        # still for only 50 s before the last reading: not enough
        (((0, 0), (30, 5500), (30 + 50 / 60, 5500)), []),
        # still from 10 to 20 min, then charging again: idle 10-20 only
        (((0, 0), (10, 1800), (15, 1800), (20, 1801), (30, 3600)), [(10, 20)]),
        # a trickle below 50 W (1 Wh a minute = 60 W is drawing, 0.5 Wh a minute is not)
        (((0, 0), (10, 1800), (11, 1801), (12, 1802)), []),
    ],
)
def test_meter_evidence_needs_a_minute_of_readings_that_stand_still(
    points: tuple[tuple[float, int], ...], expected: list[tuple[float, float]]
) -> None:
    idle = idle_spans(samples=readings(*points), statuses=[], start=T0, stop=at(40))

    assert [(s.start, s.end) for s in idle] == [(at(a), at(b)) for a, b in expected]


def test_measured_power_vetoes_a_coarse_register() -> None:
    # a register in 0.1 kWh steps does not move between readings 60 s apart while 1.4 kW flow; the charger's
    # Power.Active.Import says the car draws: not idle
    meter = readings((0, 0, 1400), (1, 0, 1400), (2, 0, 1400), (3, 100, 1400))

    assert idle_spans(samples=meter, statuses=[], start=T0, stop=at(4)) == []


def test_statuses_outside_the_session_are_not_evidence() -> None:
    # the previous session's Finishing (before start) and a status after the stop
    idle = idle_spans(
        samples=readings((0, 0), (30, 5000)),
        statuses=statuses((-5, "Finishing"), (45, "SuspendedEV")),
        start=T0,
        stop=at(40),
    )

    assert idle == []


def test_negative_grace_is_refused() -> None:
    with pytest.raises(PricingError, match="grace"):
        price(readings((0, 0), (10, 1000)), at(20), parking_grace_seconds=-1)


def test_quote_honours_the_grace_period() -> None:
    # 11 kWh at 11 kW: 1 h charging, then parked 50 min; 15 min grace: 35 -> 45 min x 6.00/h = 4.50
    request = QuoteRequest(T0, at(110), D(11), max_power_kw=D(11))

    _, with_grace = quote(STANDARD, request, time_zone=TZ, parking_grace_seconds=15 * 60)
    _, without = quote(STANDARD, request, time_zone=TZ)

    assert groups(with_grace)["PARKING_TIME"] == "4.50"
    assert groups(without)["PARKING_TIME"] == "6.00"  # 50 -> 60 min
