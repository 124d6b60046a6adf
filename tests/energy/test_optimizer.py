"""Unit tests of the optimizer: each strategy, the 6 A rule and its rotation, phase rotation, time-of-use
windows and grid signals, redistribution of unused power, chargers that reject profiles, units."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from apps.energy.limits import WEEKDAYS, GridSignal, TimeOfUseWindow, rotation_from_ocpp
from apps.energy.optimizer import (
    AllocationResult,
    Node,
    NodeKind,
    OptimizerConfig,
    RateUnit,
    Reason,
    Session,
    Site,
    Strategy,
    Supply,
    optimize,
)
from tests.energy.checks import check

NOW = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)  # Monday 12:00 in Berlin


def site_with(
    n_chargers: int,
    *,
    grid_a: float | None = None,
    grid_w: float | None = None,
    charger_a: float = 32.0,
    strategy: Strategy = Strategy.EQUAL_SHARE,
    rotations: list[str] | None = None,
    **grid_kwargs: object,
) -> Site:
    nodes = [
        Node("grid", NodeKind.GRID_CONNECTION, max_current_a=grid_a, max_power_w=grid_w, **grid_kwargs),  # type: ignore[arg-type]
        Node("site", NodeKind.SITE, "grid"),
    ]
    for c in range(n_chargers):
        rotation = rotation_from_ocpp(rotations[c]) if rotations else (0, 1, 2)
        nodes.append(Node(f"cp{c}", NodeKind.CHARGE_POINT, "site", max_current_a=charger_a, rotation=rotation))
        nodes.append(Node(f"c{c}", NodeKind.CONNECTOR, f"cp{c}"))
    return Site(tuple(nodes), timezone="Europe/Berlin", strategy=strategy)


def ac(n: int, **kwargs: object) -> Session:
    defaults: dict[str, object] = {"vehicle_max_current_a": 32.0}
    defaults.update(kwargs)
    return Session(id=f"s{n}", connector_id=f"c{n}", **defaults)  # type: ignore[arg-type]


def levels(result: AllocationResult) -> dict[str, float]:
    return {k: v.level_a for k, v in result.sessions.items()}


def run(
    site: Site, sessions: list[Session], at: datetime = NOW, cfg: OptimizerConfig | None = None
) -> AllocationResult:
    cfg = cfg or OptimizerConfig()
    result = optimize(site, sessions, at=at, config=cfg)
    assert check(site, sessions, result, at, cfg) == []
    return result


# ---------------------------------------------------------------------------------------------- equal share


def test_equal_share_splits_a_tight_grid_evenly() -> None:
    site = site_with(3, grid_a=48.0)

    result = run(site, [ac(0), ac(1), ac(2)])

    assert levels(result) == {"s0": 16.0, "s1": 16.0, "s2": 16.0}
    assert result.nodes["grid"].allocated_a == (48.0, 48.0, 48.0)
    assert {a.reason for a in result.sessions.values()} == {Reason.NODE_LIMIT}
    assert result.sessions["s0"].binding_node_id == "grid"


def test_equal_share_gives_a_car_that_takes_less_its_max_and_the_rest_to_the_others() -> None:
    site = site_with(3, grid_a=48.0)

    result = run(site, [ac(0, vehicle_max_current_a=10.0), ac(1), ac(2)])

    assert levels(result) == {"s0": 10.0, "s1": 19.0, "s2": 19.0}
    assert result.sessions["s0"].reason is Reason.AT_MAXIMUM
    assert result.sessions["s0"].explanation.startswith("10.0 A on L1+L2+L3: all it can take (vehicle)")


def test_rounding_leftover_goes_to_the_higher_ranked_sessions_in_whole_steps() -> None:
    site = site_with(3, grid_a=50.0)

    result = run(site, [ac(0), ac(1), ac(2)])

    assert sorted(levels(result).values()) == [16.0, 17.0, 17.0]
    assert result.nodes["grid"].allocated_a == (50.0, 50.0, 50.0)


def test_when_not_everyone_can_have_6_a_the_lowest_ranked_gets_nothing_rather_than_everyone_too_little() -> None:
    site = site_with(6, grid_a=32.0)
    sessions = [ac(n, energy_delivered_wh=1000.0 * n) for n in range(6)]  # s5 has had the most so far

    result = run(site, sessions)

    assert levels(result) == {"s0": 7.0, "s1": 7.0, "s2": 6.0, "s3": 6.0, "s4": 6.0, "s5": 0.0}
    assert result.sessions["s5"].reason is Reason.NO_CAPACITY
    assert result.sessions["s5"].binding_node_id == "grid"
    assert "less than the minimum 6.0 A" in result.sessions["s5"].explanation


def test_equal_share_rotates_who_waits_once_the_others_are_a_quantum_ahead() -> None:
    site = site_with(3, grid_a=12.0)  # room for two cars at 6 A
    delivered = {"s0": 0.0, "s1": 0.0, "s2": 0.0}
    waiting: list[str] = []
    for _ in range(12):
        sessions = [ac(n, energy_delivered_wh=delivered[f"s{n}"]) for n in range(3)]
        result = run(site, sessions)
        waiting.append(next(k for k, v in levels(result).items() if v == 0))
        for k, a in result.sessions.items():
            delivered[k] += a.power_w * 0.25  # 15 minutes

    # Each 6 A three-phase car gets ~1 kWh per 15 min: the one waiting changes and all take turns.
    assert set(waiting) == {"s0", "s1", "s2"}
    assert max(delivered.values()) - min(delivered.values()) <= 2 * 4140 * 0.25 + 1e-6


def test_priority_decides_who_is_left_out_in_equal_share() -> None:
    site = site_with(3, grid_a=12.0)

    result = run(site, [ac(0, priority=0), ac(1, priority=5), ac(2, priority=1)])

    assert levels(result) == {"s0": 0.0, "s1": 6.0, "s2": 6.0}


# ---------------------------------------------------------------------------------------------- priority


def test_priority_strategy_fills_the_higher_tier_to_its_max_first() -> None:
    site = site_with(3, grid_a=40.0, strategy=Strategy.PRIORITY)

    result = run(site, [ac(0, priority=0), ac(1, priority=2), ac(2, priority=1)])

    assert levels(result) == {"s1": 32.0, "s2": 8.0, "s0": 0.0}
    assert result.sessions["s0"].reason is Reason.NO_CAPACITY


def test_priority_strategy_shares_equally_inside_a_tier() -> None:
    site = site_with(4, grid_a=50.0, strategy=Strategy.PRIORITY)

    result = run(site, [ac(0, priority=1), ac(1, priority=1), ac(2, priority=0), ac(3, priority=0)])

    assert levels(result) == {"s0": 25.0, "s1": 25.0, "s2": 0.0, "s3": 0.0}


# ---------------------------------------------------------------------------------------------- departure-aware


def test_departure_aware_gives_the_urgent_car_what_it_needs_and_shares_the_rest() -> None:
    site = site_with(2, grid_a=32.0, strategy=Strategy.DEPARTURE_AWARE)
    # s0 leaves in 1 h needing 15 kWh (needs ~21.7 A / 0.9 = 24.2 A on 3 phases); s1 stays 10 h needing 10 kWh.
    urgent = ac(0, departure=NOW + timedelta(hours=1), energy_needed_wh=15_000.0)
    relaxed = ac(1, departure=NOW + timedelta(hours=10), energy_needed_wh=10_000.0)

    result = run(site, [urgent, relaxed])

    assert levels(result) == {"s0": 25.0, "s1": 7.0}
    assert "needs 24.2 A to finish in time" in result.sessions["s0"].explanation


def test_departure_aware_orders_by_least_laxity_when_the_minimum_cannot_go_to_all() -> None:
    site = site_with(3, grid_a=12.0, strategy=Strategy.DEPARTURE_AWARE)
    sessions = [  # each needs less than 6 A on average, so each would get the minimum
        ac(0, departure=NOW + timedelta(hours=8), energy_needed_wh=5_000.0),  # laxity 7.8 h
        ac(1, departure=NOW + timedelta(hours=2), energy_needed_wh=6_000.0),  # laxity 1.7 h
        ac(2, departure=NOW + timedelta(hours=4), energy_needed_wh=10_000.0),  # laxity 3.5 h
    ]

    result = run(site, sessions)

    assert levels(result) == {"s1": 6.0, "s2": 6.0, "s0": 0.0}


def test_departure_aware_gives_the_least_laxity_car_its_whole_need_first() -> None:
    site = site_with(2, grid_a=12.0, strategy=Strategy.DEPARTURE_AWARE)
    sessions = [
        ac(0, departure=NOW + timedelta(hours=4), energy_needed_wh=10_000.0),
        ac(1, departure=NOW + timedelta(hours=2), energy_needed_wh=20_000.0),  # needs 16.1 A
    ]

    result = run(site, sessions)

    assert levels(result) == {"s1": 12.0, "s0": 0.0}


def test_departure_aware_uses_defaults_when_departure_and_need_are_unknown() -> None:
    site = site_with(2, grid_a=13.0, strategy=Strategy.DEPARTURE_AWARE)
    cfg = OptimizerConfig(default_battery_wh=50_000.0, default_need_fraction=0.8)
    known = ac(0, departure=NOW + timedelta(hours=1), energy_needed_wh=2_000.0)
    unknown = ac(1, started_at=NOW - timedelta(hours=1), battery_capacity_wh=None, energy_delivered_wh=10_000.0)

    result = run(site, [known, unknown], cfg=cfg)

    # unknown: 50 kWh x 0.8 - 10 kWh = 30 kWh by start + 8 h (7 h left): 30 / 6.3 h / 690 V = 6.9 A -> 7 A.
    assert result.sessions["s1"].needed_level_a == pytest.approx(30_000 / (7 * 0.9) / 690)
    assert levels(result) == {"s0": 6.0, "s1": 7.0}


def test_a_car_that_cannot_make_it_anyway_is_served_after_those_that_can() -> None:
    site = site_with(2, grid_a=20.0, strategy=Strategy.DEPARTURE_AWARE)
    late = ac(0, departure=NOW - timedelta(minutes=5), energy_needed_wh=5_000.0)  # already past its departure
    early = ac(1, departure=NOW + timedelta(hours=1), energy_needed_wh=5_000.0)  # needs 8.05 A / 0.9

    result = run(site, [late, early])

    assert levels(result) == {"s1": 9.0, "s0": 11.0}
    assert result.sessions["s1"].rank == 1


# ---------------------------------------------------------------------------------------------- phases


def test_one_phase_cars_on_rotated_chargers_spread_over_the_site_phases() -> None:
    # 16 A per phase on the grid: three 1-phase cars on chargers wired RST, STR, TRS use L1, L2, L3.
    site = site_with(3, grid_a=16.0, rotations=["RST", "STR", "TRS"])
    sessions = [ac(n, vehicle_phases=1) for n in range(3)]

    result = run(site, sessions)

    assert levels(result) == {"s0": 16.0, "s1": 16.0, "s2": 16.0}
    assert [result.sessions[f"s{n}"].current_a for n in range(3)] == [
        (16.0, 0.0, 0.0),
        (0.0, 16.0, 0.0),
        (0.0, 0.0, 16.0),
    ]


def test_one_phase_cars_on_unrotated_chargers_share_l1() -> None:
    site = site_with(3, grid_a=16.0)

    result = run(site, [ac(n, vehicle_phases=1) for n in range(3)])

    assert sorted(levels(result).values()) == [0.0, 8.0, 8.0]
    assert result.nodes["grid"].allocated_a == (16.0, 0.0, 0.0)


def test_a_phase_full_from_one_phase_cars_does_not_stop_cars_on_other_phases() -> None:
    # L1 is shared by a 1-phase car and a 3-phase car; L2/L3 have room only the 3-phase car can use.
    site = site_with(2, grid_a=(20.0, 32.0, 32.0))  # type: ignore[arg-type]

    result = run(site, [ac(0, vehicle_phases=1), ac(1)])

    assert levels(result) == {"s0": 10.0, "s1": 10.0}
    assert result.sessions["s1"].binding_phase == "L1"


def test_dc_draws_evenly_on_three_phases_and_is_limited_in_watts() -> None:
    nodes = (
        Node("grid", NodeKind.GRID_CONNECTION, max_power_w=60_000),
        Node("dc", NodeKind.CHARGE_POINT, "grid", max_power_w=150_000, rate_unit=RateUnit.WATTS),
        Node("dc1", NodeKind.CONNECTOR, "dc"),
        Node("ac", NodeKind.CHARGE_POINT, "grid", max_current_a=16, rate_unit=RateUnit.WATTS),
        Node("ac1", NodeKind.CONNECTOR, "ac"),
    )
    site = Site(nodes)
    sessions = [
        Session("dc-car", "dc1", Supply.DC, vehicle_max_power_w=100_000),
        Session("ac-car", "ac1", vehicle_max_current_a=16.0),
    ]

    result = run(site, sessions)

    dc, acs = result.sessions["dc-car"], result.sessions["ac-car"]
    assert acs.power_w == pytest.approx(16 * 3 * 230)
    assert acs.unit is RateUnit.WATTS
    assert acs.limit == 11_040.0
    assert dc.power_w == pytest.approx(60_000 - 11_040, abs=100)
    assert dc.power_w % 100 == pytest.approx(0, abs=1e-6)
    assert dc.current_a[0] == dc.current_a[1] == dc.current_a[2] == pytest.approx(dc.power_w / 690)
    assert dc.limit == pytest.approx(dc.power_w)


def test_limit_is_sent_in_the_chargers_unit() -> None:
    nodes = (
        Node("grid", NodeKind.GRID_CONNECTION, max_current_a=100),
        Node("a", NodeKind.CHARGE_POINT, "grid", rate_unit=RateUnit.AMPS),
        Node("a1", NodeKind.CONNECTOR, "a"),
        Node("w", NodeKind.CHARGE_POINT, "grid", rate_unit=RateUnit.WATTS),
        Node("w1", NodeKind.CONNECTOR, "w"),
    )
    sessions = [
        Session("sa", "a1", vehicle_phases=1, vehicle_max_current_a=16.0),
        Session("sw", "w1", vehicle_phases=1, vehicle_max_current_a=16.0),
    ]

    result = run(Site(nodes), sessions)

    assert (result.sessions["sa"].limit, result.sessions["sa"].unit, result.sessions["sa"].number_phases) == (
        16.0,
        RateUnit.AMPS,
        1,
    )
    assert (result.sessions["sw"].limit, result.sessions["sw"].unit) == (3_680.0, RateUnit.WATTS)


def test_a_car_that_cannot_take_6_a_gets_nothing_with_the_reason() -> None:
    site = site_with(1, grid_a=100.0)

    result = run(site, [ac(0, vehicle_max_current_a=5.0)])

    assert result.sessions["s0"].level_a == 0.0
    assert result.sessions["s0"].reason is Reason.BELOW_MINIMUM


# ---------------------------------------------------------------------------------------------- time-dependent limits


def test_peak_window_reduces_the_allocation_in_local_time() -> None:
    peak = TimeOfUseWindow(weekdays=WEEKDAYS, start=time(17), end=time(20), percent=50.0)
    site = site_with(2, grid_a=64.0, windows=(peak,))
    sessions = [ac(0), ac(1)]

    before = run(site, sessions, at=datetime(2026, 3, 30, 14, 59, tzinfo=UTC))  # 16:59 CEST
    during = run(site, sessions, at=datetime(2026, 3, 30, 15, 0, tzinfo=UTC))  # 17:00 CEST

    assert levels(before) == {"s0": 32.0, "s1": 32.0}
    assert levels(during) == {"s0": 16.0, "s1": 16.0}
    assert any("time-of-use" in s for s in during.nodes["grid"].sources)


def test_grid_signal_curtails_and_expires() -> None:
    signal = GridSignal(NOW, NOW + timedelta(minutes=30), max_power_w=22_080, source="dso")
    site = site_with(2, grid_w=100_000, signals=(signal,))
    sessions = [ac(0), ac(1)]

    during = run(site, sessions, at=NOW + timedelta(minutes=29))
    after = run(site, sessions, at=NOW + timedelta(minutes=30))

    assert levels(during) == {"s0": 16.0, "s1": 16.0}
    assert levels(after) == {"s0": 32.0, "s1": 32.0}


def test_safety_margin_is_kept_free() -> None:
    site = site_with(2, grid_a=64.0, safety_margin_pct=10.0)

    result = run(site, [ac(0), ac(1)])

    assert sorted(levels(result).values()) == [28.0, 29.0]  # 57.6 A room, whole amps
    assert result.nodes["grid"].limit_a == pytest.approx((57.6, 57.6, 57.6))


def test_measured_building_load_is_subtracted_from_the_headroom() -> None:
    site = site_with(2, grid_a=64.0, other_load_a=(20.0, 10.0, 0.0))

    result = run(site, [ac(0), ac(1)])

    assert levels(result) == {"s0": 22.0, "s1": 22.0}  # L1 has 44 A left
    assert result.nodes["grid"].uncontrolled_a == (20.0, 10.0, 0.0)


# ---------------------------------------------------------------------------------------------- redistribution


def test_a_car_drawing_clearly_less_keeps_a_small_headroom_and_the_rest_goes_to_others() -> None:
    site = site_with(3, grid_a=48.0)
    lazy = ac(0, measured_current_a=6.5, previous_limit_a=16.0)  # draws 6.5 A of 16 A

    result = run(site, [lazy, ac(1), ac(2)])

    assert result.sessions["s0"].level_a == 8.5
    assert sorted([result.sessions["s1"].level_a, result.sessions["s2"].level_a]) == [19.0, 20.0]
    assert result.sessions["s0"].draw_capped is True
    assert "capped at draw + headroom" in result.sessions["s0"].explanation


def test_redistribution_is_stable_and_gives_power_back_when_the_car_wants_more() -> None:
    site = site_with(2, grid_a=32.0)
    cfg = OptimizerConfig()

    first = run(site, [ac(0, measured_current_a=8.0, previous_limit_a=16.0), ac(1)], cfg=cfg)
    # Next cycle the car still draws 8 A of its 10 A: stays capped (no flapping).
    again = run(site, [ac(0, measured_current_a=8.0, previous_limit_a=first.sessions["s0"].level_a), ac(1)], cfg=cfg)
    # It warms up and draws what it was given: it is hungry and gets its fair share back.
    hungry = run(site, [ac(0, measured_current_a=9.8, previous_limit_a=again.sessions["s0"].level_a), ac(1)], cfg=cfg)

    assert (first.sessions["s0"].level_a, first.sessions["s1"].level_a) == (10.0, 22.0)
    assert again.sessions["s0"].level_a == 10.0
    assert (hungry.sessions["s0"].level_a, hungry.sessions["s1"].level_a) == (16.0, 16.0)


def test_a_paused_car_keeps_the_minimum_only_when_room_is_left_after_the_others() -> None:
    paused = ac(0, measured_current_a=0.0, previous_limit_a=16.0)

    tight = run(site_with(2, grid_a=32.0), [paused, ac(1)])
    roomy = run(site_with(2, grid_a=40.0), [paused, ac(1)])

    assert levels(tight) == {"s0": 0.0, "s1": 32.0}
    assert levels(roomy) == {"s0": 6.0, "s1": 32.0}


def test_a_car_known_to_need_nothing_more_is_served_last_even_with_a_higher_priority() -> None:
    site = site_with(2, grid_a=32.0, strategy=Strategy.PRIORITY)
    done = ac(0, priority=9, energy_needed_wh=0.0)

    result = run(site, [done, ac(1, priority=0)])

    assert levels(result) == {"s0": 0.0, "s1": 32.0}


def test_dc_redistribution_works_in_watts() -> None:
    nodes = (
        Node("grid", NodeKind.GRID_CONNECTION, max_power_w=100_000),
        Node("d0", NodeKind.CHARGE_POINT, "grid"),
        Node("c0", NodeKind.CONNECTOR, "d0"),
        Node("d1", NodeKind.CHARGE_POINT, "grid"),
        Node("c1", NodeKind.CONNECTOR, "d1"),
    )
    sessions = [
        Session("a", "c0", Supply.DC, vehicle_max_power_w=80_000, measured_power_w=20_000, previous_limit_w=50_000),
        Session("b", "c1", Supply.DC, vehicle_max_power_w=80_000),
    ]

    result = run(Site(nodes), sessions)

    assert result.sessions["a"].power_w == pytest.approx(22_000)
    assert result.sessions["b"].power_w == pytest.approx(78_000)


# ---------------------------------------------------------------------------------------------- excluded chargers


def test_a_charger_that_rejects_profiles_is_reserved_at_its_full_rating() -> None:
    nodes = [
        Node("grid", NodeKind.GRID_CONNECTION, max_current_a=64.0),
        Node("bad", NodeKind.CHARGE_POINT, "grid", max_current_a=32.0, rejects_profiles=True),
        Node("bad1", NodeKind.CONNECTOR, "bad"),
        Node("good", NodeKind.CHARGE_POINT, "grid", max_current_a=63.0),
        Node("good1", NodeKind.CONNECTOR, "good"),
    ]
    sessions = [
        Session("x", "bad1", vehicle_max_current_a=16.0),
        Session("y", "good1", vehicle_max_current_a=63.0),
    ]

    result = run(Site(tuple(nodes)), sessions)

    assert result.sessions["x"].controlled is False
    assert result.sessions["x"].reason is Reason.PROFILES_REJECTED
    assert result.sessions["x"].current_a == (32.0, 32.0, 32.0)
    assert result.sessions["y"].level_a == 32.0
    assert result.nodes["grid"].uncontrolled_a == (32.0, 32.0, 32.0)
    assert result.nodes["grid"].total_a == (64.0, 64.0, 64.0)


def test_an_idle_charger_that_rejects_profiles_is_reserved_too() -> None:
    nodes = [
        Node("grid", NodeKind.GRID_CONNECTION, max_current_a=40.0),
        Node("bad", NodeKind.CHARGE_POINT, "grid", rejects_profiles=True),
        Node("bad1", NodeKind.CONNECTOR, "bad", max_current_a=16.0),
        Node("good", NodeKind.CHARGE_POINT, "grid"),
        Node("good1", NodeKind.CONNECTOR, "good"),
    ]

    result = optimize(Site(tuple(nodes)), [Session("y", "good1", vehicle_max_current_a=32.0)], at=NOW)

    assert result.sessions["y"].level_a == 24.0


def test_uncontrolled_load_above_the_limit_leaves_controlled_cars_at_zero_with_a_warning() -> None:
    site = site_with(1, grid_a=32.0, other_load_a=(40.0, 40.0, 40.0))

    result = run(site, [ac(0)])

    assert result.sessions["s0"].level_a == 0.0
    assert any("above its limit" in w for w in result.warnings)


# ---------------------------------------------------------------------------------------------- nested limits


def test_sub_distribution_and_grid_limits_both_hold() -> None:
    nodes = [
        Node("grid", NodeKind.GRID_CONNECTION, max_power_w=33_120),  # 48 A x 3 x 230 V
        Node("d1", NodeKind.DISTRIBUTION, "grid", max_current_a=20.0),
        Node("d2", NodeKind.DISTRIBUTION, "grid"),
    ]
    sessions = []
    for n, dist in enumerate(["d1", "d1", "d2", "d2"]):
        nodes += [Node(f"cp{n}", NodeKind.CHARGE_POINT, dist), Node(f"c{n}", NodeKind.CONNECTOR, f"cp{n}")]
        sessions.append(ac(n))

    result = run(Site(tuple(nodes)), sessions)

    assert levels(result) == {"s0": 10.0, "s1": 10.0, "s2": 14.0, "s3": 14.0}
    assert result.sessions["s0"].binding_node_id == "d1"
    assert result.sessions["s2"].binding_node_id == "grid"
    assert result.sessions["s2"].binding_phase == "power"


def test_unknown_connector_and_naive_time_are_refused() -> None:
    site = site_with(1)

    with pytest.raises(ValueError, match="unknown connector"):
        optimize(site, [Session("s", "nope")], at=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        optimize(site, [], at=datetime(2026, 1, 1))


def test_no_sessions_gives_empty_allocations() -> None:
    result = run(site_with(2, grid_a=10.0), [])

    assert result.sessions == {}
    assert result.nodes["grid"].allocated_a == (0.0, 0.0, 0.0)
