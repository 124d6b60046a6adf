"""Property tests: over random trees, limits and sessions, the optimizer keeps its four promises.

The promises and what "allocatable" means precisely are in `tests/energy/checks.py`; the checker
recomputes everything from the inputs and the per-session output.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.energy.limits import GridSignal, TimeOfUseWindow
from apps.energy.optimizer import (
    Node,
    NodeKind,
    OptimizerConfig,
    RateUnit,
    Session,
    Site,
    Strategy,
    Supply,
    optimize,
)
from tests.energy.checks import check

ROTATIONS = [(0, 1, 2), (1, 2, 0), (2, 0, 1), (0, 2, 1), (2, 1, 0), (1, 0, 2)]
T = TypeVar("T")
AT = datetime(2026, 3, 30, 16, 30, tzinfo=UTC)  # a Monday, 18:30 in Berlin (CEST)


def mostly(common: st.SearchStrategy[T], rare: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """Mostly `common`, sometimes `rare` (edge cases stay in, but most examples have contention)."""
    return st.integers(0, 7).flatmap(lambda k: rare if k == 0 else common)


def amps(lo: int, hi: int) -> st.SearchStrategy[float]:
    return st.integers(lo, hi).map(float)


phase_limit = mostly(amps(10, 120), amps(0, 10))
limits_a = st.one_of(
    st.none(),
    phase_limit,
    phase_limit,
    st.tuples(st.one_of(st.none(), phase_limit), st.one_of(st.none(), phase_limit), st.one_of(st.none(), phase_limit)),
)
limits_w = st.one_of(st.none(), mostly(amps(5_000, 120_000), amps(0, 5_000)))
grid_a = st.one_of(st.none(), mostly(amps(32, 250), amps(0, 32)))
grid_w = st.one_of(st.none(), mostly(amps(20_000, 250_000), amps(0, 20_000)))


@st.composite
def windows(draw: st.DrawFn) -> tuple[TimeOfUseWindow, ...]:
    if not draw(st.booleans()):
        return ()
    start = draw(st.integers(0, 23))
    end = draw(st.integers(0, 23))
    return (
        TimeOfUseWindow(
            weekdays=frozenset(draw(st.sets(st.integers(0, 6), min_size=1))),
            start=time(start),
            end=time(end),
            percent=draw(st.sampled_from([None, 30.0, 60.0, 100.0])),
            max_power_w=draw(st.one_of(st.none(), mostly(amps(10_000, 100_000), amps(0, 10_000)))),
        ),
    )


@st.composite
def signals(draw: st.DrawFn) -> tuple[GridSignal, ...]:
    out = []
    for _ in range(draw(st.integers(0, 2))):
        start = AT + timedelta(minutes=draw(st.integers(-120, 60)))
        out.append(
            GridSignal(
                valid_from=start,
                valid_until=start + timedelta(minutes=draw(st.integers(1, 180))),
                max_power_w=draw(st.one_of(st.none(), mostly(amps(10_000, 150_000), amps(0, 10_000)))),
                max_current_a=draw(st.one_of(st.none(), mostly(amps(16, 200), amps(0, 16)))),
                issued_at=AT - timedelta(minutes=draw(st.integers(0, 500))),
            )
        )
    return tuple(out)


@st.composite
def sites_and_sessions(draw: st.DrawFn) -> tuple[Site, list[Session]]:
    nodes: list[Node] = [
        Node(
            "grid",
            NodeKind.GRID_CONNECTION,
            max_power_w=draw(grid_w),
            max_current_a=draw(grid_a),
            safety_margin_pct=draw(st.sampled_from([0.0, 5.0, 10.0])),
            windows=draw(windows()),
            signals=draw(signals()),
            other_load_w=draw(st.one_of(st.none(), amps(0, 10_000))),
        )
    ]
    internal = ["grid"]
    if draw(st.booleans()):
        nodes.append(Node("site", NodeKind.SITE, "grid", max_current_a=draw(grid_a)))
        internal.append("site")
    for d in range(draw(st.integers(0, 3))):
        phases = draw(st.sampled_from([3, 3, 3, 3, 3, 1]))
        nodes.append(
            Node(
                f"dist{d}",
                NodeKind.DISTRIBUTION,
                draw(st.sampled_from(internal)),
                max_power_w=draw(limits_w),
                max_current_a=draw(limits_a),
                phases=phases,
                rotation=draw(st.sampled_from(ROTATIONS)),
                other_load_a=draw(
                    st.one_of(
                        st.none(),
                        st.tuples(st.integers(0, 15), st.integers(0, 15), st.integers(0, 15)).map(
                            lambda t: (float(t[0]), float(t[1]), float(t[2]))
                        ),
                    )
                ),
            )
        )
        internal.append(f"dist{d}")
    connectors: list[str] = []
    for c in range(draw(st.integers(1, 10))):
        rejects = draw(st.integers(0, 9)) == 0
        phases = draw(st.sampled_from([3, 3, 1]))
        nodes.append(
            Node(
                f"cp{c}",
                NodeKind.CHARGE_POINT,
                draw(st.sampled_from(internal)),
                max_power_w=draw(limits_w),
                max_current_a=draw(amps(6, 32))
                if rejects
                else draw(st.one_of(st.none(), mostly(amps(16, 63), amps(0, 16)))),
                phases=phases,
                rotation=draw(st.sampled_from(ROTATIONS)),
                rejects_profiles=rejects,
                rate_unit=draw(st.sampled_from(list(RateUnit))),
            )
        )
        for k in range(draw(st.integers(1, 2))):
            cid = f"cp{c}c{k}"
            nodes.append(
                Node(
                    cid,
                    NodeKind.CONNECTOR,
                    f"cp{c}",
                    max_current_a=draw(st.one_of(st.none(), mostly(amps(16, 63), amps(0, 16)))),
                    max_power_w=draw(st.one_of(st.none(), mostly(amps(4_200, 150_000), amps(0, 4_200)))),
                )
            )
            connectors.append(cid)
    used = [c for c in connectors if draw(mostly(st.just(True), st.just(False)))]
    sessions: list[Session] = []
    for n, cid in enumerate(used):
        dc = draw(st.integers(0, 4)) == 0
        measured = draw(st.booleans())
        common = {
            "id": f"s{n}",
            "connector_id": cid,
            "priority": draw(st.integers(0, 2)),
            "departure": draw(st.one_of(st.none(), st.integers(-30, 900).map(lambda m: AT + timedelta(minutes=m)))),
            "energy_needed_wh": draw(st.one_of(st.none(), st.integers(0, 80_000).map(float))),
            "energy_delivered_wh": float(draw(st.integers(0, 30_000))),
        }
        if dc:
            sessions.append(
                Session(
                    supply=Supply.DC,
                    vehicle_max_power_w=draw(mostly(amps(5_000, 150_000), amps(0, 5_000))),
                    measured_power_w=draw(amps(0, 100_000)) if measured else None,
                    previous_limit_w=draw(amps(1_000, 100_000)) if measured else None,
                    **common,  # type: ignore[arg-type]
                )
            )
        else:
            sessions.append(
                Session(
                    vehicle_phases=draw(st.sampled_from([1, 2, 3, None])),
                    vehicle_max_current_a=draw(mostly(amps(6, 32), amps(0, 6))),
                    vehicle_max_power_w=draw(st.one_of(st.none(), st.none(), amps(1_000, 22_000))),
                    measured_current_a=draw(amps(0, 32)) if measured else None,
                    previous_limit_a=draw(amps(6, 32)) if measured else None,
                    **common,  # type: ignore[arg-type]
                )
            )
    site = Site(tuple(nodes), timezone="Europe/Berlin", strategy=draw(st.sampled_from(list(Strategy))))
    return site, sessions


@st.composite
def tight_sites(draw: st.DrawFn) -> tuple[Site, list[Session]]:
    """A random site whose grid connection is too small for its cars, so they compete."""
    site, sessions = draw(sites_and_sessions())
    grid = replace(site.nodes[0], max_current_a=draw(amps(0, 12 * max(len(sessions), 1))), max_power_w=None)
    return replace(site, nodes=(grid, *site.nodes[1:])), sessions


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(sites_and_sessions(), tight_sites()))
def test_random_sites_keep_every_promise(case: tuple[Site, list[Session]]) -> None:
    site, sessions = case
    cfg = OptimizerConfig()

    result = optimize(site, sessions, at=AT, config=cfg)

    assert check(site, sessions, result, AT, cfg) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(sites_and_sessions(), tight_sites()), st.sampled_from([0.1, 0.5, 2.0]))
def test_other_steps_keep_every_promise(case: tuple[Site, list[Session]], step: float) -> None:
    site, sessions = case
    cfg = OptimizerConfig(current_step_a=step, power_step_w=step * 1000)

    result = optimize(site, sessions, at=AT, config=cfg)

    assert check(site, sessions, result, AT, cfg) == []


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(sites_and_sessions(), tight_sites()))
def test_the_result_does_not_depend_on_input_order(case: tuple[Site, list[Session]]) -> None:
    site, sessions = case
    shuffled = Site(tuple(reversed(site.nodes)), site.timezone, site.strategy)

    forward = optimize(site, sessions, at=AT)
    backward = optimize(shuffled, list(reversed(sessions)), at=AT)

    flat_forward = {(k, r): v.current_a[r] for k, v in forward.sessions.items() for r in range(3)}
    flat_backward = {(k, r): v.current_a[r] for k, v in backward.sessions.items() for r in range(3)}
    assert flat_forward == pytest.approx(flat_backward, abs=1e-6)
