"""Replay a synthetic day through the real smart-charging optimizer, with and without smart charging.

    .venv/bin/python benchmarks/energy_replay.py            # everything (3-5 minutes on 2 shared cores)
    .venv/bin/python benchmarks/energy_replay.py --only depot|public|timing [--seed N] [--step-minutes M]
    .venv/bin/python benchmarks/energy_replay.py --only timing [--sizes 50,500,2000] [--runs 200]

Scenarios (seeded RNG, so the figures repeat):

(a) Depot, Europe/Berlin, Monday 12:00 -> Tuesday 12:00: a 400 kW grid connection (580 A per phase,
    2 % safety margin), four sub-distributions of 160 A per phase, 180 AC chargers (22 kW, wired
    RST/STR/TRS in turn) and 20 DC chargers (50 kW). 180 vans (70 % 11 kW three-phase, 20 % 22 kW,
    10 % 7.4 kW one-phase; one in ten draws at most 10 A whatever it is allowed) arrive 14:00-21:00 and
    leave 04:30-09:00 needing 5-45 kWh; 20 e-trucks (40/50 kW) arrive 17:30-22:00 needing 40-140 kWh.
    The fleet system tells departure and need for 90 % each; for the rest the optimizer uses the
    site's defaults (fleet leaves from 05:30, an unknown need is half the battery).
(b) Public site, Tuesday 00:00-24:00: 200 kW connection with a weekday 17:00-20:00 peak window at
    60 %, a DSO curtailment signal to 120 kW 12:00-13:00 UTC, a measured supermarket load
    (15-60 kW) subtracted from the headroom, 12 AC chargers x 2 connectors (one charger rejects
    profiles and is reserved at full rating) and 4 DC chargers of 150 kW. Cars arrive through the day
    (Poisson, busier at 8-10, 12-14 and 16-19; a car finding no free connector drives on), stay
    20 min-5 h (DC 12-75 min); a third tell departure and need, 60 % declare their maximum; defaults
    from the site's history: 2 h AC / 30 min DC, 18 kWh. The day runs until the last car has left.

Each minute the active sessions (with last minute's measured draw and limit) go through `optimize`,
every car draws min(limit, what it can really take, what it still needs). "Uncontrolled" lets every
car draw its maximum. The feasibility bound: a session is "possible" when it can get its need at its
real maximum rate within its stay, and the set of such sessions fits the site's capacity over time
(max-flow over 15-minute slots through every limited node above the chargers, in Wh; phases and the 6 A minimum
are relaxed, so this bound is optimistic, which makes the target harder, not easier).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.energy.limits import WEEKDAYS, GridSignal, TimeOfUseWindow, effective_limit, rotation_from_ocpp
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

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")
V = 230.0
ROTATIONS = ["RST", "STR", "TRS"]


# --------------------------------------------------------------------------------------------------
# Scenario data


@dataclass
class Car:
    id: str
    connector: str
    supply: Supply
    arrive: datetime
    depart: datetime
    need_wh: float
    phases: int = 3  # AC phases of the car
    declared_a: float = 16.0  # AC max current the optimizer is told (vehicle profile)
    true_a: float = 16.0  # AC max current it really draws
    max_w: float = 0.0  # DC max power
    battery_wh: float = 60_000.0
    knows_departure: bool = True
    knows_need: bool = True
    declares_max: bool = True
    priority: int = 0
    uncontrolled_charger: bool = False
    # simulation state
    delivered_wh: float = 0.0
    last_current: float | None = None
    last_limit: float | None = None
    last_power: float = 0.0

    def true_max_w(self, connector_phases: int = 3) -> float:
        if self.supply is Supply.DC:
            return self.max_w
        return self.true_a * min(self.phases, connector_phases) * V


@dataclass
class Scenario:
    name: str
    site: Site
    cars: list[Car]
    start: datetime
    minutes: int
    other_load_w: Callable[[datetime], float] = lambda at: 0.0
    other_load_node: str = "site"
    config: OptimizerConfig = field(default_factory=OptimizerConfig)
    grid_id: str = "grid"


def clip(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def depot(seed: int) -> Scenario:
    rng = random.Random(seed)
    start = datetime(2026, 6, 15, 12, 0, tzinfo=BERLIN)
    nodes: list[Node] = [
        Node("grid", NodeKind.GRID_CONNECTION, max_power_w=400_000, max_current_a=580.0, safety_margin_pct=2.0),
        Node("site", NodeKind.SITE, "grid"),
    ]
    for d in range(4):
        nodes.append(Node(f"dist{d}", NodeKind.DISTRIBUTION, "site", max_current_a=160.0))
    cars: list[Car] = []
    for n in range(200):
        dist = f"dist{n % 4}"
        truck = n >= 180
        cp = f"cp{n:03d}"
        if truck:
            nodes.append(Node(cp, NodeKind.CHARGE_POINT, dist, max_power_w=50_000, rate_unit=RateUnit.WATTS))
        else:
            rot = rotation_from_ocpp(ROTATIONS[n % 3])
            nodes.append(Node(cp, NodeKind.CHARGE_POINT, dist, max_current_a=32.0, rotation=rot))
        nodes.append(Node(f"{cp}-1", NodeKind.CONNECTOR, cp))
        arrive_h = clip(rng.gauss(17.5, 1.4), 14.0, 21.0) if not truck else clip(rng.gauss(19.5, 1.0), 17.5, 22.0)
        depart_h = clip(rng.gauss(6.5, 0.8), 4.5, 9.0) + 24
        arrive = start + timedelta(hours=arrive_h - 12)
        depart = start + timedelta(hours=depart_h - 12)
        arrive = arrive.replace(second=0, microsecond=0)
        depart = depart.replace(second=0, microsecond=0)
        if truck:
            battery = 200_000.0
            need = clip(rng.lognormvariate(math.log(85_000), 0.35), 40_000, 140_000)
            car = Car(
                f"truck{n}",
                f"{cp}-1",
                Supply.DC,
                arrive,
                depart,
                need,
                max_w=rng.choice([50_000.0, 40_000.0]),
                battery_wh=battery,
            )
        else:
            kind = rng.random()
            if kind < 0.7:
                phases, amps = 3, 16.0
            elif kind < 0.9:
                phases, amps = 3, 32.0
            else:
                phases, amps = 1, 32.0
            battery = rng.choice([50_000.0, 60_000.0, 75_000.0])
            need = clip(rng.lognormvariate(math.log(19_000), 0.45), 5_000, min(45_000, battery * 0.9))
            true_a = 10.0 if rng.random() < 0.1 else amps
            car = Car(
                f"van{n}",
                f"{cp}-1",
                Supply.AC,
                arrive,
                depart,
                need,
                phases=phases,
                declared_a=amps,
                true_a=true_a,
                battery_wh=battery,
            )
        car.knows_departure = rng.random() < 0.9
        car.knows_need = rng.random() < 0.9
        cars.append(car)
    # What a depot operator would configure: the fleet leaves from 05:30; an unknown need is half a battery.
    cfg = OptimizerConfig(default_departure_local=dtime(5, 30), default_need_fraction=0.5)
    return Scenario(
        "depot", Site(tuple(nodes), "Europe/Berlin", Strategy.DEPARTURE_AWARE), cars, start, 24 * 60, config=cfg
    )


def public(seed: int) -> Scenario:
    rng = random.Random(seed + 1)
    start = datetime(2026, 6, 16, 0, 0, tzinfo=BERLIN)
    peak = TimeOfUseWindow(WEEKDAYS, dtime(17), dtime(20), percent=60.0, label="peak")
    signal = GridSignal(
        valid_from=datetime(2026, 6, 16, 12, 0, tzinfo=UTC),
        valid_until=datetime(2026, 6, 16, 13, 0, tzinfo=UTC),
        max_power_w=120_000,
        source="DSO curtailment",
    )
    nodes: list[Node] = [
        Node("grid", NodeKind.GRID_CONNECTION, max_power_w=200_000, windows=(peak,), signals=(signal,)),
        Node("site", NodeKind.SITE, "grid"),
        Node("ac-board", NodeKind.DISTRIBUTION, "site", max_current_a=250.0),
    ]
    connectors: list[tuple[str, Supply]] = []
    for c in range(12):
        rot = rotation_from_ocpp(ROTATIONS[c % 3])
        nodes.append(
            Node(
                f"ac{c}", NodeKind.CHARGE_POINT, "ac-board", max_current_a=32.0, rotation=rot, rejects_profiles=c == 11
            )
        )
        for k in range(2):
            nodes.append(Node(f"ac{c}-{k}", NodeKind.CONNECTOR, f"ac{c}", max_current_a=32.0))
            connectors.append((f"ac{c}-{k}", Supply.AC))
    for c in range(4):
        nodes.append(Node(f"dc{c}", NodeKind.CHARGE_POINT, "site", max_power_w=150_000, rate_unit=RateUnit.WATTS))
        nodes.append(Node(f"dc{c}-1", NodeKind.CONNECTOR, f"dc{c}"))
        connectors.append((f"dc{c}-1", Supply.DC))

    def rate_per_hour(h: float) -> float:
        base = 4.0
        for centre, width, height in ((9.0, 1.2, 7.0), (13.0, 1.0, 6.0), (17.5, 1.5, 9.0)):
            base += height * math.exp(-(((h - centre) / width) ** 2))
        return base if 6 <= h < 23 else 0.8

    busy_until: dict[str, datetime] = {c: start for c, _ in connectors}
    cars: list[Car] = []
    t = 0.0
    n = 0
    while True:
        t += rng.expovariate(rate_per_hour(t / 60.0) / 60.0)  # t in minutes; the rate is per hour
        if t >= 24 * 60:
            break
        arrive = (start + timedelta(minutes=t)).replace(second=0, microsecond=0)
        wants_dc = rng.random() < 0.3
        free = [c for c, s in connectors if (s is Supply.DC) == wants_dc and busy_until[c] <= arrive]
        if not free:
            continue  # the car drives on
        conn = rng.choice(free)
        if wants_dc:
            stay = clip(rng.lognormvariate(math.log(30), 0.4), 12, 75)
            max_w = rng.choice([50_000.0, 100_000.0, 150_000.0, 75_000.0])
            need = clip(rng.lognormvariate(math.log(30_000), 0.4), 8_000, 70_000)
            car = Car(f"p{n}", conn, Supply.DC, arrive, arrive + timedelta(minutes=round(stay)), need, max_w=max_w)
        else:
            stay = clip(rng.lognormvariate(math.log(120), 0.6), 20, 300)
            phases, amps = rng.choice([(3, 16.0), (3, 16.0), (3, 32.0), (1, 32.0), (1, 16.0), (2, 16.0)])
            need = clip(rng.lognormvariate(math.log(14_000), 0.6), 3_000, 50_000)
            car = Car(
                f"p{n}",
                conn,
                Supply.AC,
                arrive,
                arrive + timedelta(minutes=round(stay)),
                need,
                phases=phases,
                declared_a=amps,
                true_a=amps,
            )
        car.knows_departure = car.knows_need = rng.random() < 0.33
        car.declares_max = rng.random() < 0.6
        car.uncontrolled_charger = conn.startswith("ac11-")
        busy_until[conn] = car.depart
        cars.append(car)
        n += 1

    def supermarket(at: datetime) -> float:
        h = at.astimezone(BERLIN).hour + at.astimezone(BERLIN).minute / 60
        open_ = 7 <= h < 21
        return 15_000 + (45_000 * math.sin(math.pi * (h - 7) / 14) if open_ else 0.0)

    # What the operator knows from the site's history: stays of about 2 h (AC) / 30 min (DC), ~18 kWh.
    cfg = OptimizerConfig(
        default_dwell=timedelta(hours=2), default_dwell_dc=timedelta(minutes=30), default_need_fraction=0.3
    )
    # Replay until the last car has left (cars arriving late in the evening stay past midnight).
    last = max(c.depart for c in cars)
    minutes = max(24 * 60, math.ceil((last - start).total_seconds() / 60 / 15) * 15)
    return Scenario(
        "public",
        Site(tuple(nodes), "Europe/Berlin", Strategy.DEPARTURE_AWARE),
        cars,
        start,
        minutes,
        other_load_w=supermarket,
        config=cfg,
    )


# --------------------------------------------------------------------------------------------------
# Simulation


def with_other_load(site: Site, node_id: str, watts: float) -> Site:
    from dataclasses import replace

    return replace(site, nodes=tuple(replace(n, other_load_w=watts) if n.id == node_id else n for n in site.nodes))


@dataclass
class RunResult:
    label: str
    peak_w: float = 0.0
    minutes_over: int = 0
    minutes_node_over: int = 0
    delivered_wh: float = 0.0
    needed_wh: float = 0.0
    met: set[str] = field(default_factory=set)
    delivered: dict[str, float] = field(default_factory=dict)
    over_examples: list[str] = field(default_factory=list)
    times_ms: list[float] = field(default_factory=list)
    max_sessions: int = 0


def connector_phases(site: Site) -> dict[str, int]:
    return {n.id: n.phases for n in site.nodes}


def simulate(sc: Scenario, strategy: Strategy | None, step_minutes: int = 1) -> RunResult:
    """strategy None: uncontrolled."""
    res = RunResult(label=strategy.value if strategy else "uncontrolled")
    cars = [Car(**{k: getattr(c, k) for k in Car.__dataclass_fields__}) for c in sc.cars]
    for c in cars:
        c.delivered_wh, c.last_current, c.last_limit, c.last_power = 0.0, None, None, 0.0
    nodes = {n.id: n for n in sc.site.nodes}
    parents = {n.id: n.parent_id for n in sc.site.nodes}
    limits: dict[str, float] = {}
    cfg = sc.config
    for m in range(sc.minutes):
        at = sc.start + timedelta(minutes=m)
        active = [c for c in cars if c.arrive <= at < c.depart]
        res.max_sessions = max(res.max_sessions, len(active))
        other = sc.other_load_w(at)
        site = with_other_load(sc.site, sc.other_load_node, other) if other else sc.site
        if strategy is not None and m % step_minutes == 0:
            sessions = []
            for c in active:
                if c.uncontrolled_charger:
                    sessions.append(Session(c.id, c.connector, c.supply, vehicle_phases=c.phases))
                    continue
                remaining = max(c.need_wh - c.delivered_wh, 0.0)
                sessions.append(
                    Session(
                        id=c.id,
                        connector_id=c.connector,
                        supply=c.supply,
                        vehicle_phases=c.phases if c.supply is Supply.AC else None,
                        vehicle_max_current_a=c.declared_a if c.supply is Supply.AC and c.declares_max else None,
                        vehicle_max_power_w=c.max_w if c.supply is Supply.DC and c.declares_max else None,
                        priority=c.priority,
                        departure=c.depart if c.knows_departure else None,
                        energy_needed_wh=remaining if c.knows_need else None,
                        battery_capacity_wh=c.battery_wh,
                        energy_delivered_wh=c.delivered_wh,
                        started_at=c.arrive,
                        measured_current_a=c.last_current if c.supply is Supply.AC else None,
                        measured_power_w=c.last_power if c.supply is Supply.DC and c.last_limit is not None else None,
                        previous_limit_a=c.last_limit if c.supply is Supply.AC else None,
                        previous_limit_w=c.last_limit if c.supply is Supply.DC else None,
                    )
                )
            t0 = time.perf_counter()
            result = optimize(site, sessions, at=at, config=cfg, strategy=strategy)
            res.times_ms.append((time.perf_counter() - t0) * 1000)
            limits = {}
            for c in active:
                a = result.sessions[c.id]
                if a.controlled:
                    limits[c.id] = a.level_a if c.supply is Supply.AC else a.power_w
        # Cars draw for this minute.
        grid_power = other
        node_a: dict[str, list[float]] = {nid: [0.0, 0.0, 0.0] for nid in nodes}
        node_w: dict[str, float] = dict.fromkeys(nodes, 0.0)
        res_other = other
        if res_other:
            up: str | None = sc.other_load_node
            while up is not None:
                node_w[up] += res_other
                for r in range(3):
                    node_a[up][r] += res_other / (3 * V)
                up = parents[up]
        sharing: dict[str, int] = {}  # cars still charging per charger, at the start of the minute
        for c in active:
            if c.need_wh > c.delivered_wh:
                charger = nodes[c.connector].parent_id or ""
                sharing[charger] = sharing.get(charger, 0) + 1
        for c in active:
            remaining = c.need_wh - c.delivered_wh
            controlled = strategy is not None and not c.uncontrolled_charger
            if c.supply is Supply.DC:
                cap = c.max_w if not controlled else min(c.max_w, limits.get(c.id, 0.0))
                power = min(cap, max(remaining, 0.0) * 60)
                c.last_power = power
                c.last_limit = limits.get(c.id) if controlled else None
                per_phase = [power / (3 * V)] * 3
                used_phases = [0, 1, 2]
            else:
                cap_a = c.true_a if not controlled else min(c.true_a, limits.get(c.id, 0.0))
                if c.uncontrolled_charger:
                    # The charger shares its own rating among its connectors (its internal load management).
                    charger = nodes[c.connector].parent_id or ""
                    cap_a = min(cap_a, _currents(nodes[charger])[0] / max(sharing.get(charger, 0), 1))
                if controlled and cap_a < cfg.min_current_a - 1e-9:
                    cap_a = 0.0
                power = min(cap_a * c.phases * V, max(remaining, 0.0) * 60)
                current = power / (c.phases * V)
                c.last_current = current
                c.last_limit = limits.get(c.id) if controlled else None
                rot = nodes[nodes[c.connector].parent_id or ""].rotation  # type: ignore[index]
                used_phases = [rot[p] for p in range(c.phases)]
                per_phase = [0.0, 0.0, 0.0]
                for r in used_phases:
                    per_phase[r] = current
            c.delivered_wh += power / 60
            grid_power += power
            k2: str | None = c.connector
            while k2 is not None:
                node_w[k2] += power
                for r in range(3):
                    node_a[k2][r] += per_phase[r]
                k2 = parents[k2]
        res.peak_w = max(res.peak_w, grid_power)
        # Compare with the limits in force (without our safety margin: the connection's own limit).
        over_grid = False
        over_any = False
        for nid, node in nodes.items():
            lim_a, lim_w = physical_limit(node, at, sc.site.timezone)
            if node_w[nid] > lim_w + 1e-6 or any(node_a[nid][r] > lim_a[r] + 1e-6 for r in range(3)):
                over_any = True
                over_grid = over_grid or nid == sc.grid_id
                if strategy is not None and len(res.over_examples) < 5:
                    res.over_examples.append(f"{at:%H:%M} {nid} {node_w[nid]:.0f} W {node_a[nid]} > {lim_w} {lim_a}")
        res.minutes_over += over_grid
        res.minutes_node_over += over_any
    for c in cars:
        res.delivered_wh += min(c.delivered_wh, c.need_wh)
        res.needed_wh += c.need_wh
        res.delivered[c.id] = c.delivered_wh
        if c.delivered_wh >= c.need_wh - 10:
            res.met.add(c.id)
    return res


def _currents(node: Node) -> tuple[float, float, float]:
    mc = node.max_current_a
    if mc is None:
        return (math.inf, math.inf, math.inf)
    if isinstance(mc, int | float):
        return (float(mc), float(mc), float(mc))
    return (
        math.inf if mc[0] is None else float(mc[0]),
        math.inf if mc[1] is None else float(mc[1]),
        math.inf if mc[2] is None else float(mc[2]),
    )


def physical_limit(node: Node, at: datetime, tz: str) -> tuple[tuple[float, float, float], float]:
    """A node's limit at `at` without our safety margin (time-of-use windows and grid signals included)."""
    eff = effective_limit(
        max_power_w=node.max_power_w,
        max_current_a=node.max_current_a,
        windows=node.windows,
        signals=node.signals,
        at=at,
        tz=tz,
    )
    return eff.max_current_a, eff.max_power_w


# --------------------------------------------------------------------------------------------------
# Feasibility bound: max-flow (Dinic) over 15-minute slots


class MaxFlow:
    def __init__(self, n: int) -> None:
        self.n = n
        self.graph: list[list[int]] = [[] for _ in range(n)]
        self.to: list[int] = []
        self.cap: list[float] = []

    def add(self, u: int, v: int, c: float) -> int:
        self.graph[u].append(len(self.to))
        self.to.append(v)
        self.cap.append(c)
        self.graph[v].append(len(self.to))
        self.to.append(u)
        self.cap.append(0.0)
        return len(self.to) - 2

    def run(self, s: int, t: int) -> float:
        flow = 0.0
        to, cap, graph = self.to, self.cap, self.graph
        while True:
            level = [-1] * self.n
            level[s] = 0
            queue = [s]
            for u in queue:
                for e in graph[u]:
                    if cap[e] > 1e-9 and level[to[e]] < 0:
                        level[to[e]] = level[u] + 1
                        queue.append(to[e])
            if level[t] < 0:
                return flow
            it = [0] * self.n
            while True:
                f = self._dfs(s, t, math.inf, level, it)
                if f <= 1e-9:
                    break
                flow += f

    def _dfs(self, u: int, t: int, f: float, level: list[int], it: list[int]) -> float:
        if u == t:
            return f
        to, cap, edges = self.to, self.cap, self.graph[u]
        while it[u] < len(edges):
            e = edges[it[u]]
            v = to[e]
            if cap[e] > 1e-9 and level[v] == level[u] + 1:
                d = self._dfs(v, t, min(f, cap[e]), level, it)
                if d > 0:
                    cap[e] -= d
                    cap[e ^ 1] += d
                    return d
            it[u] += 1
        return 0.0


def feasible_sessions(sc: Scenario, slot_minutes: int = 15) -> tuple[set[str], set[str]]:
    """(individually possible, possible together within the site's capacity) session ids."""
    nodes = {n.id: n for n in sc.site.nodes}
    conn_phases = connector_phases(sc.site)
    individually: set[str] = set()
    for c in sc.cars:
        if c.uncontrolled_charger:
            continue
        stay_h = (c.depart - c.arrive).total_seconds() / 3600
        rate = c.true_max_w(conn_phases.get(c.connector, 3))
        if rate * stay_h >= c.need_wh - 10:
            individually.add(c.id)
    candidates = [c for c in sc.cars if c.id in individually]
    # Internal nodes with a limit, over the slots of the day.
    internal = [
        n
        for n in sc.site.nodes
        if n.kind not in (NodeKind.CHARGE_POINT, NodeKind.CONNECTOR)
        and (n.max_power_w is not None or n.max_current_a is not None or n.windows or n.signals)
    ]
    slots = sc.minutes // slot_minutes
    idx: dict[tuple[str, int], int] = {}
    count = 2
    for n in internal:
        for s in range(slots):
            idx[(n.id, s)] = count
            count += 1

    internal_ids = {n.id for n in internal}

    def internal_ancestor(node_id: str | None) -> str | None:
        while node_id is not None and node_id not in internal_ids:
            node_id = nodes[node_id].parent_id
        return node_id

    carries_other: set[str] = set()
    k: str | None = sc.other_load_node
    while k is not None:
        carries_other.add(k)
        k = nodes[k].parent_id
    slot_energy: dict[tuple[str, int], float] = {}
    for n in internal:
        for s in range(slots):
            energy = 0.0
            for mm in range(slot_minutes):
                at = sc.start + timedelta(minutes=s * slot_minutes + mm)
                lim_a, lim_w = physical_limit(n, at, sc.site.timezone)
                cap_w = min(lim_w, sum(min(a, 1e12) for a in lim_a) * V)
                if n.id in carries_other:
                    cap_w -= sc.other_load_w(at)
                energy += max(cap_w, 0.0) / 60
            slot_energy[(n.id, s)] = energy

    def build(selected: list[Car]) -> tuple[MaxFlow, float]:
        mf = MaxFlow(count + len(selected))
        source, sink = 0, 1
        for n in internal:
            up = internal_ancestor(n.parent_id)
            for s in range(slots):
                target = idx[(up, s)] if up is not None else sink
                mf.add(idx[(n.id, s)], target, slot_energy[(n.id, s)])
        total = 0.0
        for j, c in enumerate(selected):
            u = count + j
            rate = c.true_max_w(conn_phases.get(c.connector, 3))
            # "possible alone" allows 10 Wh of slack; the flow asks for exactly what the stay can give.
            need = min(c.need_wh, rate * (c.depart - c.arrive).total_seconds() / 3600)
            mf.add(source, u, need)
            total += need
            leaf = internal_ancestor(nodes[c.connector].parent_id)
            for s in range(slots):
                s0 = sc.start + timedelta(minutes=s * slot_minutes)
                s1 = s0 + timedelta(minutes=slot_minutes)
                overlap = (min(s1, c.depart) - max(s0, c.arrive)).total_seconds() / 3600
                if overlap > 0:
                    mf.add(u, idx[(leaf, s)] if leaf else sink, rate * overlap)
        return mf, total

    selected = list(candidates)
    while selected:
        mf, total = build(selected)
        flow = mf.run(0, 1)
        if flow >= total - 1.0:
            break
        # Drop the largest need and try again (keeps the count of possible sessions as high as it can).
        selected.remove(max(selected, key=lambda c: c.need_wh))
    return individually, {c.id for c in selected}


# --------------------------------------------------------------------------------------------------
# Timing of single recomputes


def timing_site(n_connectors: int, seed: int) -> tuple[Site, list[Session], datetime]:
    rng = random.Random(seed)
    at = datetime(2026, 6, 16, 16, 30, tzinfo=UTC)  # 18:30 Berlin, inside the peak window
    peak = TimeOfUseWindow(WEEKDAYS, dtime(17), dtime(20), percent=70.0)
    nodes: list[Node] = [
        Node(
            "grid",
            NodeKind.GRID_CONNECTION,
            max_power_w=n_connectors * 5_000,
            max_current_a=n_connectors * 8.0,
            safety_margin_pct=3.0,
            windows=(peak,),
            signals=(GridSignal(at - timedelta(hours=1), at + timedelta(hours=1), max_power_w=n_connectors * 4_500),),
        ),
        Node("site", NodeKind.SITE, "grid", other_load_w=n_connectors * 300.0),
    ]
    n_dist = max(1, n_connectors // 50)
    for d in range(n_dist):
        nodes.append(Node(f"d{d}", NodeKind.DISTRIBUTION, "site", max_current_a=250.0))
    sessions: list[Session] = []
    for c in range(n_connectors // 2):
        dc = rng.random() < 0.1
        cp = f"cp{c}"
        nodes.append(
            Node(
                cp,
                NodeKind.CHARGE_POINT,
                f"d{c % n_dist}",
                max_current_a=None if dc else 32.0,
                max_power_w=100_000 if dc else 22_000,
                rotation=rotation_from_ocpp(ROTATIONS[c % 3]),
                rate_unit=RateUnit.WATTS if dc else RateUnit.AMPS,
                rejects_profiles=rng.random() < 0.01,
            )
        )
        for k in range(2):
            cid = f"{cp}-{k}"
            nodes.append(Node(cid, NodeKind.CONNECTOR, cp, max_current_a=None if dc else 32.0))
            common = {
                "priority": rng.choice([0, 0, 0, 1, 2]),
                "departure": at + timedelta(minutes=rng.randint(-10, 720)) if rng.random() < 0.7 else None,
                "energy_needed_wh": float(rng.randint(0, 60_000)) if rng.random() < 0.7 else None,
                "energy_delivered_wh": float(rng.randint(0, 30_000)),
                "started_at": at - timedelta(minutes=rng.randint(1, 600)),
            }
            if dc:
                sessions.append(
                    Session(
                        cid,
                        cid,
                        Supply.DC,
                        vehicle_max_power_w=rng.choice([50_000.0, 100_000.0, 150_000.0]),
                        measured_power_w=rng.choice([None, 20_000.0, 45_000.0]),
                        previous_limit_w=50_000.0,
                        **common,  # type: ignore[arg-type]
                    )
                )
            else:
                sessions.append(
                    Session(
                        cid,
                        cid,
                        vehicle_phases=rng.choice([1, 3, 3, 3]),
                        vehicle_max_current_a=rng.choice([16.0, 32.0, 16.0, 10.0]),
                        measured_current_a=rng.choice([None, None, 4.0, 15.5, 0.0]),
                        previous_limit_a=16.0,
                        **common,  # type: ignore[arg-type]
                    )
                )
    return Site(tuple(nodes), "Europe/Berlin"), sessions, at


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def timing(seed: int, sizes: tuple[int, ...] = (50, 500, 2000), runs_small: int = 200, runs_large: int = 40) -> None:
    load = os.getloadavg()
    print(
        "\n== Time per recompute: optimize() = tree compile + limits + allocation + result, every connector "
        "occupied,\n   windows, signals, margins, draws, 1 % rejecting chargers; grid sized for ~40 % of demand"
    )
    print(
        f"   load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs (shared machine)"
    )
    print(
        f"{'connectors':>10} {'strategy':>16} {'runs':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'min ms':>8} {'cpu p50':>8} {'charging':>10}"
    )
    for size in sizes:
        snapshots = [timing_site(size, seed + k) for k in range(5)]
        runs = runs_small if size <= 500 else runs_large
        for strategy in Strategy:
            times: list[float] = []
            cpu: list[float] = []
            charging = 0
            for r in range(runs):
                site, sessions, at = snapshots[r % len(snapshots)]
                t0, c0 = time.perf_counter(), time.process_time()
                result = optimize(site, sessions, at=at, strategy=strategy)
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
                charging = sum(1 for a in result.sessions.values() if a.power_w > 0)
            print(
                f"{size:>10} {strategy.value:>16} {runs:>5} {pct(times, 0.5):>8.1f} {pct(times, 0.95):>8.1f} "
                f"{pct(times, 0.99):>8.1f} {max(times):>8.1f} {min(times):>8.1f} {pct(cpu, 0.5):>8.1f} "
                f"{charging:>5}/{len(sessions):<4}"
            )
    load = os.getloadavg()
    print(f"   load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


# --------------------------------------------------------------------------------------------------


def report(sc: Scenario, runs: list[RunResult], possible: set[str], individually: set[str]) -> None:
    n = sum(1 for c in sc.cars if not c.uncontrolled_charger)
    print(
        f"sessions: {len(sc.cars)} ({n} controllable), need {sum(c.need_wh for c in sc.cars) / 1e6:.2f} MWh; "
        f"possible alone: {len(individually)}/{n}; possible together (bound): {len(possible)}/{n}"
    )
    print(
        f"{'':>16} {'peak kW':>8} {'min over':>8} {'node over':>9} {'delivered MWh':>14} {'met':>11} "
        f"{'met|possible':>13} {'p50 ms':>7} {'p99 ms':>7}"
    )
    for r in runs:
        controllable_met = {cid for cid in r.met if cid in {c.id for c in sc.cars if not c.uncontrolled_charger}}
        met_possible = len(controllable_met & possible)
        times = f"{pct(r.times_ms, 0.5):>7.1f} {pct(r.times_ms, 0.99):>7.1f}" if r.times_ms else f"{'-':>7} {'-':>7}"
        print(
            f"{r.label:>16} {r.peak_w / 1000:>8.1f} {r.minutes_over:>8} {r.minutes_node_over:>9} "
            f"{r.delivered_wh / 1e6:>6.2f}/{r.needed_wh / 1e6:<6.2f} "
            f"{len(controllable_met) / n:>10.1%} {met_possible / max(len(possible), 1):>12.1%} {times}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", choices=["depot", "public", "timing"])
    parser.add_argument("--step-minutes", type=int, default=1, help="recompute every N minutes (cars draw each minute)")
    parser.add_argument("--strategies", default="departure_aware,equal_share,priority")
    parser.add_argument("--sizes", default="50,500,2000", help="connector counts for --only timing")
    parser.add_argument("--runs", type=int, default=200, help="recomputes per size and strategy (2,000+: a fifth)")
    args = parser.parse_args()
    strategies = [Strategy(s) for s in args.strategies.split(",") if s]
    print(f"energy replay, seed {args.seed}, recompute every {args.step_minutes} min, python {sys.version.split()[0]}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    for make in (depot, public):
        if args.only and args.only != make.__name__:
            continue
        sc = make(args.seed)
        grid = next(n for n in sc.site.nodes if n.id == sc.grid_id)
        print(
            f"\n== {sc.name}: grid {(grid.max_power_w or 0) / 1000:.0f} kW, {len(sc.site.nodes)} nodes, "
            f"{sc.start:%a %Y-%m-%d %H:%M} {sc.site.timezone}, {sc.minutes} minutes"
        )
        t0 = time.perf_counter()
        individually, possible = feasible_sessions(sc)
        t_bound = time.perf_counter() - t0
        runs = [simulate(sc, None)]
        for strategy in strategies:
            runs.append(simulate(sc, strategy, args.step_minutes))
        report(sc, runs, possible, individually)
        print(f"(feasibility bound computed in {t_bound:.1f} s; most sessions at once: {runs[-1].max_sessions})")
    if not args.only or args.only == "timing":
        sizes = tuple(int(x) for x in args.sizes.split(",") if x)
        timing(args.seed, sizes, args.runs, max(args.runs // 5, 1))


if __name__ == "__main__":
    main()
