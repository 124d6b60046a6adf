"""An independent checker of optimizer results (it does not reuse the optimizer's internals).

It recomputes, from the inputs and the per-session output only, every node's load per site phase and
in W, the uncontrolled load (measured non-EV load, chargers rejecting profiles) and the limits, and
checks the four promises of the optimizer:

1. no node's limit (effective at ``at``, safety margin included) is exceeded on any phase or in power
   by controlled sessions: controlled <= max(0, limit - uncontrolled);
2. no AC allocation below the minimum unless 0 (DC: below ``dc_min_power_w``);
3. no vehicle gets more than it can take: phases (AC on at most its phases, on the site phases the
   rotations give), current, power, and the draw cap;
4. nothing allocatable is left unused. "Allocatable" precisely: a controlled session whose level is
   below its vehicle-side maximum ``vmax`` (vehicle current/power, draw cap) could be raised by
   ``delta`` = one step (``min(step, vmax - level)``), or, at 0, by the minimum (when ``vmax >= min``),
   without any ancestor node (connector and charger included) going over its limit on the site
   phases the session uses or in power. Such a session must not exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from apps.energy.optimizer import AllocationResult, Node, OptimizerConfig, Session, Site, Supply

TOL_A = 1e-6
TOL_W = 1e-3


@dataclass
class Wiring:
    parent: dict[str, str | None]
    site_phase: dict[str, dict[int, int]]  # node -> own connected phase -> site phase
    voltage: dict[str, float]


def wiring(site: Site) -> Wiring:
    nodes = {n.id: n for n in site.nodes}
    parent = {n.id: n.parent_id for n in site.nodes}
    site_phase: dict[str, dict[int, int]] = {}
    voltage: dict[str, float] = {}

    def resolve(node_id: str) -> None:
        if node_id in site_phase:
            return
        node = nodes[node_id]
        if node.parent_id is None:
            site_phase[node_id] = {p: node.rotation[p] for p in range(node.phases)}
            voltage[node_id] = node.voltage_v or 230.0
            return
        resolve(node.parent_id)
        up = site_phase[node.parent_id]
        site_phase[node_id] = {p: up[node.rotation[p]] for p in range(node.phases) if node.rotation[p] in up}
        voltage[node_id] = node.voltage_v or voltage[node.parent_id]

    for n in site.nodes:
        resolve(n.id)
    return Wiring(parent, site_phase, voltage)


def ancestors(w: Wiring, node_id: str) -> list[str]:
    out: list[str] = []
    cur: str | None = node_id
    while cur is not None:
        out.append(cur)
        cur = w.parent[cur]
    return out


def session_site_phases(w: Wiring, session: Session) -> set[int]:
    if session.supply is Supply.DC:
        return {0, 1, 2}
    own = w.site_phase[session.connector_id]
    k = session.vehicle_phases or 3
    return {own[p] for p in range(k) if p in own}


def node_limits(node: Node, w: Wiring, at: datetime, tz: str) -> tuple[list[float], float]:
    eff = node.effective_limit(at, tz)
    lim = [math.inf] * 3
    for p, r in w.site_phase[node.id].items():
        lim[r] = min(lim[r], eff.max_current_a[p])
    return lim, eff.max_power_w


def charger_of(site: Site, w: Wiring, connector_id: str) -> Node | None:
    nodes = {n.id: n for n in site.nodes}
    for nid in ancestors(w, connector_id):
        if nodes[nid].kind == "charge_point":
            return nodes[nid]
    return None


def uncontrolled(site: Site, w: Wiring) -> dict[str, tuple[list[float], float]]:
    """Uncontrolled load directly at each node (tests give rejecting chargers a current rating)."""
    out: dict[str, tuple[list[float], float]] = {}
    for n in site.nodes:
        a = [0.0, 0.0, 0.0]
        pw = 0.0
        own = w.site_phase[n.id]
        v = w.voltage[n.id]
        if n.other_load_a is not None:
            for p, r in own.items():
                a[r] += n.other_load_a[p]
            pw += n.other_load_w if n.other_load_w is not None else sum(n.other_load_a[p] for p in own) * v
        elif n.other_load_w is not None and own:
            for _p, r in own.items():
                a[r] += n.other_load_w / (len(own) * v)
            pw += n.other_load_w
        if n.kind == "charge_point" and n.rejects_profiles and own:
            assert isinstance(n.max_current_a, int | float), "tests give rejecting chargers a current rating"
            rating = float(n.max_current_a)
            if n.max_power_w is not None:
                rating = min(rating, n.max_power_w / (len(own) * v))
            for _p, r in own.items():
                a[r] += rating
            pw += min(rating * len(own) * v, n.max_power_w if n.max_power_w is not None else math.inf)
        out[n.id] = (a, pw)
    return out


def vehicle_max(session: Session, w: Wiring, cfg: OptimizerConfig) -> float:
    """The vehicle-side maximum level (tests always give the vehicle's maximum)."""
    v = w.voltage[session.connector_id]
    if session.supply is Supply.DC:
        assert session.vehicle_max_power_w is not None
        vmax = session.vehicle_max_power_w / (3 * v)
        meas, prev, thr, head = (
            session.measured_power_w,
            session.previous_limit_w,
            cfg.unused_threshold_w,
            cfg.unused_headroom_w,
        )
        if meas is not None and prev is not None and meas < prev - thr:
            vmax = min(vmax, max((meas + head) / (3 * v), cfg.dc_min_power_w / (3 * v)))
        return vmax
    assert session.vehicle_max_current_a is not None
    vmax = float(session.vehicle_max_current_a)
    k = len(session_site_phases(w, session))
    if session.vehicle_max_power_w is not None and k:
        vmax = min(vmax, session.vehicle_max_power_w / (k * v))
    meas, prev = session.measured_current_a, session.previous_limit_a
    if meas is not None and prev is not None and meas < prev - cfg.unused_threshold_a:
        vmax = min(vmax, max(meas + cfg.unused_headroom_a, cfg.min_current_a))
    return vmax


def check(
    site: Site, sessions: list[Session], result: AllocationResult, at: datetime, cfg: OptimizerConfig
) -> list[str]:
    """Return the violated promises (empty when all hold)."""
    problems: list[str] = []
    w = wiring(site)
    nodes = {n.id: n for n in site.nodes}
    unc_direct = uncontrolled(site, w)
    ctrl_a = {n.id: [0.0, 0.0, 0.0] for n in site.nodes}
    ctrl_w = dict.fromkeys(nodes, 0.0)
    unc_a = {n.id: [0.0, 0.0, 0.0] for n in site.nodes}
    unc_w = dict.fromkeys(nodes, 0.0)
    for nid, (a, pw) in unc_direct.items():
        for up in ancestors(w, nid):
            for r in range(3):
                unc_a[up][r] += a[r]
            unc_w[up] += pw

    by_id = {s.id: s for s in sessions}
    assert set(result.sessions) == set(by_id)
    for s in sessions:
        alloc = result.sessions[s.id]
        cp = charger_of(site, w, s.connector_id)
        if cp is not None and cp.rejects_profiles:
            if alloc.controlled:
                problems.append(f"{s.id}: on a charger that rejects profiles but controlled")
            continue
        if not alloc.controlled:
            if session_site_phases(w, s):
                problems.append(f"{s.id}: not controlled without a reason")
            continue
        used = {r for r in range(3) if alloc.current_a[r] > 0}
        expected = session_site_phases(w, s)
        if not used <= expected:
            problems.append(f"{s.id}: draws on {used}, may only use {expected}")
        v = w.voltage[s.connector_id]
        if s.supply is Supply.DC:
            if 0 < alloc.power_w < cfg.dc_min_power_w - TOL_W:
                problems.append(f"{s.id}: DC {alloc.power_w} W below the minimum")
            if s.vehicle_max_power_w is not None and alloc.power_w > s.vehicle_max_power_w + TOL_W:
                problems.append(f"{s.id}: DC {alloc.power_w} W above the vehicle's {s.vehicle_max_power_w}")
            per_phase = alloc.power_w / (3 * v)
            if any(abs(alloc.current_a[r] - per_phase) > TOL_A for r in range(3)):
                problems.append(f"{s.id}: DC not spread evenly on 3 phases")
        else:
            level = alloc.level_a
            if 0 < level < cfg.min_current_a - TOL_A:
                problems.append(f"{s.id}: {level} A below the AC minimum")
            if s.vehicle_max_current_a is not None and level > s.vehicle_max_current_a + TOL_A:
                problems.append(f"{s.id}: {level} A above the vehicle's {s.vehicle_max_current_a} A")
            if s.vehicle_max_power_w is not None and alloc.power_w > s.vehicle_max_power_w + TOL_W:
                problems.append(f"{s.id}: {alloc.power_w} W above the vehicle's {s.vehicle_max_power_w} W")
            if level > 0 and s.vehicle_phases is not None and len(used) > s.vehicle_phases:
                problems.append(f"{s.id}: uses {len(used)} phases, the car has {s.vehicle_phases}")
            if level > 0 and abs(alloc.power_w - level * len(used) * v) > TOL_W:
                problems.append(f"{s.id}: power {alloc.power_w} W does not match {level} A x {len(used)} x {v} V")
        if alloc.level_a > vehicle_max(s, w, cfg) + TOL_A:
            problems.append(f"{s.id}: level {alloc.level_a} above the vehicle maximum {vehicle_max(s, w, cfg)}")
        for up in ancestors(w, s.connector_id):
            for r in range(3):
                ctrl_a[up][r] += alloc.current_a[r]
            ctrl_w[up] += alloc.power_w

    limits = {n.id: node_limits(n, w, at, site.timezone) for n in site.nodes}
    for nid in nodes:
        lim_a, lim_w = limits[nid]
        for r in range(3):
            room = max(0.0, lim_a[r] - unc_a[nid][r])
            if ctrl_a[nid][r] > room + TOL_A:
                problems.append(f"node {nid}: L{r + 1} {ctrl_a[nid][r]:.6f} A > room {room:.6f} A")
        room_w = max(0.0, lim_w - unc_w[nid])
        if ctrl_w[nid] > room_w + TOL_W:
            problems.append(f"node {nid}: {ctrl_w[nid]:.3f} W > room {room_w:.3f} W")

    # 4. Nothing allocatable left unused.
    for s in sessions:
        alloc = result.sessions[s.id]
        if not alloc.controlled:
            continue
        vmax = vehicle_max(s, w, cfg)
        v = w.voltage[s.connector_id]
        phases = session_site_phases(w, s)
        if s.supply is Supply.DC:
            step, minimum, pco = cfg.power_step_w / (3 * v), cfg.dc_min_power_w / (3 * v), 3 * v
        else:
            step, minimum, pco = cfg.current_step_a, cfg.min_current_a, len(phases) * v
        level = alloc.level_a
        if level <= 0:
            if vmax < minimum - TOL_A:
                continue
            delta = minimum
        else:
            delta = min(step, vmax - level)
            if delta <= TOL_A:
                continue
        fits = True
        for up in ancestors(w, s.connector_id):
            lim_a, lim_w = limits[up]
            for r in phases:
                if ctrl_a[up][r] + unc_a[up][r] + delta > lim_a[r] - TOL_A:
                    fits = False
            if ctrl_w[up] + unc_w[up] + delta * pco > lim_w - TOL_W:
                fits = False
        if fits:
            problems.append(
                f"{s.id}: at {level:.3f} could take {delta:.3f} more (max {vmax:.3f}) and every node has room "
                f"({alloc.reason}: {alloc.explanation})"
            )
    return problems
