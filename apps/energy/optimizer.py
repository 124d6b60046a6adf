"""Smart-charging optimizer: share a site's capacity among its charging sessions.

Pure Python and typed; no Django. The control loop builds a :class:`Site` and a list of
:class:`Session` from the database, calls :func:`optimize` and records / sends the result.

Model
-----
* The site is a tree of :class:`Node` (grid connection -> site -> sub-distributions -> charge points
  -> connectors). Every node may carry a power limit (W) and/or a current limit per phase (A), time-of-use
  windows, grid signals and a safety margin (see :mod:`apps.energy.limits`), and a measured non-EV load
  hanging directly below it (subtracted from the headroom of the node and every ancestor).
* Phases: all arithmetic is in **site phases** L1/L2/L3 (the phases of the root). A node's ``rotation``
  says which phase of its parent feeds its own L1/L2/L3 (OCPP ``ConnectorPhaseRotation``, see
  :func:`apps.energy.limits.rotation_from_ocpp`); rotations compose down the tree. ``phases`` is how
  many of the node's own phases are wired (a 1-phase charger has ``phases=1``: only its L1).
* An AC session draws the same current on each phase it uses: its connector's L1..Lk with
  ``k = vehicle phases`` (so a 1-phase car on a 3-phase charger draws on the charger's L1, which maps
  to a site phase through the rotations). A DC session is a power; it is treated as drawing evenly on
  the three site phases: ``P / (3 * V)`` amps per phase.
* A session's *level* is its current per phase in A (for DC the equivalent ``P / (3 V)``). Equal
  share means equal level: every car gets the same amps on the phases it shares.

Algorithm (per recompute)
-------------------------
1. Resolve every node's effective limit at ``at``, subtract the uncontrolled load below it (measured
   non-EV load, and chargers that reject profiles, reserved at their full rating).
2. Constraints: per node, one per site phase and one for power. A node with a single controlled
   session below it (a connector, most charge points) is folded into that session's maximum.
3. Sessions are ranked (see :class:`Strategy`) and split into tiers. Per tier:
   a. *(departure-aware only)* least laxity first, each session gets the rate it needs to finish by
      ``departure_safety`` x the time left (at least the minimum), as far as headroom allows;
   b. *admission*: in rank order, each remaining session gets the minimum (6 A / ``dc_min_power_w``)
      if every constraint it touches still has room for it; otherwise it gets 0. This is how the
      6 A rule is met: when not everyone can have 6 A, the lowest ranked are left out;
   c. *progressive filling* (water-filling) from those floors: all admitted sessions rise together
      (the lowest first) until a constraint saturates (its sessions freeze) or a session reaches its
      maximum. Exact max-min fairness over the per-phase and power constraints, event driven;
   d. levels are rounded down to the step (``current_step_a`` / ``power_step_w``) and a fill-up pass,
      in rank order, raises any session by one step (or admits a session at 0 with the minimum) while
      every constraint it touches has room, until nothing moves. So nothing allocatable is left.
4. Results: per session the allocation per site phase, the limit in the charger's unit and a reason;
   per node the allocated and uncontrolled load per site phase against its effective limit.

Ranking and the fairness tie-breaker
------------------------------------
* ``EQUAL_SHARE``: one tier. Rank = (higher contract priority first, then less energy delivered in
  this session in whole ``rotation_quantum_wh`` steps (1 kWh), then ``crc32(session id)``). When the
  minimum cannot be given to all, the cars that have had the least so far go first, so the ones left
  out take over once the others are ``rotation_quantum_wh`` ahead: the rotation is fair and has a
  built-in hysteresis of one quantum (no flapping every cycle). crc32 is stable across processes.
* ``PRIORITY``: one tier per contract priority, highest first; a tier is filled completely (to every
  car's maximum or until a constraint saturates) before the next tier gets anything. Inside a tier as
  equal share.
* ``DEPARTURE_AWARE``: tiers per contract priority; inside a tier rank by least laxity
  (time to departure minus the time needed at the car's maximum), then as equal share. Step 3a gives
  each car its needed rate in that order; the rest is shared as in equal share. Sessions that cannot
  finish even at their maximum (negative laxity) come after all that can (triage), closest first.

Idle sessions (known to need no more energy, or drawing nothing so that the draw cap is the minimum)
are ranked last in a tier of their own, whatever the strategy: they keep the minimum only when room
is left after everyone else has been served.

Redistribution of unused power
------------------------------
A car whose measured draw is more than ``unused_threshold_a`` (DC: ``unused_threshold_w``) below the
limit it was last given is capped at its draw plus ``unused_headroom_a`` (``unused_headroom_w``), but
never below the minimum; the rest goes to others. Headroom > threshold makes this stable: a car that
keeps drawing below its cap stays capped; one that draws up to within the threshold of its cap is
hungry again and gets its full maximum back on the next cycle.
"""

from __future__ import annotations

import heapq
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum

from apps.energy.limits import (
    IDENTITY_ROTATION,
    INF,
    PHASE_NAMES,
    EffectiveLimit,
    GridSignal,
    PhaseValues,
    Rotation,
    TimeOfUseWindow,
    effective_limit,
    static_currents,
    zone,
)

# Tolerance of comparisons (amps / level units). Float drift stays far below it; the property tests
# check limits with 1e-6 A.
_EPS = 1e-9


class NodeKind(StrEnum):
    GRID_CONNECTION = "grid_connection"
    SITE = "site"
    DISTRIBUTION = "distribution"
    CHARGE_POINT = "charge_point"
    CONNECTOR = "connector"


class Supply(StrEnum):
    AC = "AC"
    DC = "DC"


class RateUnit(StrEnum):
    """OCPP ``ChargingScheduleAllowedChargingRateUnit``."""

    AMPS = "A"
    WATTS = "W"


class Strategy(StrEnum):
    EQUAL_SHARE = "equal_share"
    PRIORITY = "priority"
    DEPARTURE_AWARE = "departure_aware"


class Reason(StrEnum):
    AT_MAXIMUM = "at_maximum"  # got everything it can take (vehicle, connector, charger, draw cap)
    NODE_LIMIT = "node_limit"  # a node it hangs under is full
    NO_CAPACITY = "no_capacity"  # 0: not enough room for the minimum current on some node
    BELOW_MINIMUM = "below_minimum"  # 0: it cannot take even the minimum (vehicle/connector below 6 A)
    PROFILES_REJECTED = "profiles_rejected"  # not controlled; charger reserved at its full rating
    NOT_CONNECTED = "not_connected"  # 0: no wired phase reaches the connector


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    kind: NodeKind
    parent_id: str | None = None
    max_power_w: float | None = None
    max_current_a: float | tuple[float | None, float | None, float | None] | None = None  # per own phase
    phases: int = 3  # own phases wired: L1..L<phases>
    voltage_v: float | None = None  # phase-to-neutral; inherited from the parent, 230 V at the root
    safety_margin_pct: float = 0.0
    rotation: Rotation = IDENTITY_ROTATION  # parent phase feeding own L1, L2, L3
    windows: tuple[TimeOfUseWindow, ...] = ()
    signals: tuple[GridSignal, ...] = ()
    other_load_w: float | None = None  # measured non-EV load directly below this node
    other_load_a: tuple[float, float, float] | None = None  # same, per own phase
    rejects_profiles: bool = False  # charge points: excluded, reserved at full rating
    rate_unit: RateUnit = RateUnit.AMPS  # charge points: unit the charger accepts

    def effective_limit(self, at: datetime, tz: str = "UTC") -> EffectiveLimit:
        return effective_limit(
            max_power_w=self.max_power_w,
            max_current_a=self.max_current_a,
            safety_margin_pct=self.safety_margin_pct,
            windows=self.windows,
            signals=self.signals,
            at=at,
            tz=tz,
        )


@dataclass(frozen=True, slots=True)
class Site:
    nodes: tuple[Node, ...]
    timezone: str = "UTC"
    strategy: Strategy = Strategy.EQUAL_SHARE


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    connector_id: str
    supply: Supply = Supply.AC
    vehicle_phases: int | None = None  # AC phases the car uses; None: all the connector has
    vehicle_max_current_a: float | None = None  # AC, per phase
    vehicle_max_power_w: float | None = None  # DC (also caps AC when given)
    priority: int = 0  # contract priority, higher first
    departure: datetime | None = None
    energy_needed_wh: float | None = None  # still needed from now on
    battery_capacity_wh: float | None = None  # used for the default need
    energy_delivered_wh: float = 0.0  # so far in this session
    started_at: datetime | None = None
    measured_current_a: float | None = None  # AC: highest phase current drawn now
    measured_power_w: float | None = None  # DC: power drawn now
    previous_limit_a: float | None = None  # AC: per-phase limit the car was last given
    previous_limit_w: float | None = None  # DC: power limit it was last given


@dataclass(frozen=True, slots=True)
class OptimizerConfig:
    min_current_a: float = 6.0
    current_step_a: float = 1.0
    dc_min_power_w: float = 1_000.0
    power_step_w: float = 100.0
    unused_threshold_a: float = 1.0
    unused_headroom_a: float = 2.0
    unused_threshold_w: float = 1_000.0
    unused_headroom_w: float = 2_000.0
    default_ac_max_current_a: float = 32.0  # when neither the car nor any node says
    default_dc_max_power_w: float = 50_000.0
    default_dwell: timedelta = timedelta(hours=8)  # departure when unknown: start + dwell
    default_departure_local: time | None = None  # or: the next such local time after the start (depots)
    default_dwell_dc: timedelta = timedelta(minutes=45)  # DC stays are short: start + this when unknown
    default_battery_wh: float = 60_000.0
    default_need_fraction: float = 0.8  # need when unknown: this share of the battery minus delivered
    departure_safety: float = 0.9  # aim to be done after this share of the time left
    rotation_quantum_wh: float = 1_000.0


@dataclass(slots=True)  # not frozen: frozen dataclasses are slow to build, and 2,000 are built per run
class SessionAllocation:
    """What one session gets, and why (``explanation`` renders the structured reason as text)."""

    session_id: str
    connector_id: str
    charge_point_id: str | None
    supply: Supply
    controlled: bool
    level_a: float  # current per phase (AC) or the DC equivalent P/(3V)
    current_a: PhaseValues  # per site phase
    power_w: float
    limit: float  # value for SetChargingProfile in `unit`, rounded down (0.1 A / 1 W)
    unit: RateUnit
    number_phases: int
    max_level_a: float  # the most it could take now (vehicle, connector/charger, draw cap)
    min_level_a: float  # below this it gets 0 (6 A; DC: dc_min_power_w)
    reason: Reason
    binding_node_id: str | None  # the node that limits it (if a node does)
    binding_phase: str | None  # "L1".."L3" or "power" for a shared node that is full
    room_a: float  # room left on the binding node, level units
    max_source: str  # where max_level_a comes from
    strategy: Strategy
    rank: int  # 1 = served first
    priority: int
    needed_level_a: float | None  # departure-aware: level needed to finish in time
    draw_capped: bool  # capped at measured draw + headroom (unused power redistributed)
    watts_per_amp: float  # W per level unit (phases x volts)

    def _show(self, level: float) -> str:
        if self.supply is Supply.DC:
            return f"{level * self.watts_per_amp / 1000:.1f} kW"
        return f"{level:.1f} A"

    @property
    def explanation(self) -> str:
        r = self.reason
        if r is Reason.PROFILES_REJECTED:
            rating = ", ".join(f"{PHASE_NAMES[p]} {self.current_a[p]:.1f} A" for p in range(3))
            return f"charger {self.charge_point_id} rejects charging profiles: not controlled, reserved at ({rating})"
        if r is Reason.NOT_CONNECTED:
            return "0: no wired phase reaches this connector"
        if self.supply is Supply.DC:
            shown = f"{self.power_w / 1000:.1f} kW"
        else:
            used = (
                "+".join(PHASE_NAMES[p] for p in range(3) if self.current_a[p] > 0) or f"{self.number_phases} phase(s)"
            )
            shown = f"{self.level_a:.1f} A on {used}"
        if r is Reason.BELOW_MINIMUM:
            text = (
                f"0: it can take at most {self._show(self.max_level_a)} ({self.max_source}), "
                f"below the minimum {self._show(self.min_level_a)}"
            )
        elif r is Reason.NO_CAPACITY:
            text = (
                f"0: node {self.binding_node_id} ({self.binding_phase}) has room for {self._show(self.room_a)}, "
                f"less than the minimum {self._show(self.min_level_a)}; sessions ranked higher were served first"
            )
        elif r is Reason.AT_MAXIMUM:
            text = f"{shown}: all it can take ({self.max_source})"
        else:
            text = (
                f"{shown}: node {self.binding_node_id} is full ({self.binding_phase}); "
                f"it could take up to {self._show(self.max_level_a)}"
            )
        extra = [f"strategy {self.strategy.value}", f"rank {self.rank}", f"priority {self.priority}"]
        if self.needed_level_a is not None:
            extra.append(f"needs {self._show(self.needed_level_a)} to finish in time")
        if self.draw_capped:
            extra.append("draws less than allowed: capped at draw + headroom, the rest went to others")
        return f"{text} ({'; '.join(extra)})"


@dataclass(slots=True)
class NodeAllocation:
    node_id: str
    kind: NodeKind
    limit_a: PhaseValues  # effective limit per site phase (inf = none)
    limit_w: float
    allocated_a: PhaseValues  # controlled sessions below, per site phase
    allocated_w: float
    uncontrolled_a: PhaseValues  # measured non-EV load + reserved chargers below
    uncontrolled_w: float
    sources: tuple[str, ...]  # where the limit comes from

    @property
    def total_a(self) -> PhaseValues:
        a, u = self.allocated_a, self.uncontrolled_a
        return (a[0] + u[0], a[1] + u[1], a[2] + u[2])

    @property
    def total_w(self) -> float:
        return self.allocated_w + self.uncontrolled_w


@dataclass(slots=True)
class AllocationResult:
    at: datetime
    strategy: Strategy
    sessions: dict[str, SessionAllocation]
    nodes: dict[str, NodeAllocation]
    warnings: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------------
# Tree compilation


@dataclass(slots=True)
class _CNode:
    node: Node
    index: int
    parent: int  # -1 for a root
    voltage: float
    root_map: Rotation  # own phase -> site phase
    connected: frozenset[int]  # own phases wired through to the root
    charge_point: int  # nearest charge point ancestor-or-self, -1 if none
    path: tuple[int, ...] = ()  # self and ancestors up to the root


@dataclass(slots=True)
class _Tree:
    nodes: list[_CNode]
    by_id: dict[str, int]


def _compile(site: Site) -> _Tree:
    by_id: dict[str, Node] = {}
    for node in site.nodes:
        if node.id in by_id:
            raise ValueError(f"duplicate node id {node.id!r}")
        if node.phases not in (1, 2, 3):
            raise ValueError(f"node {node.id!r}: phases must be 1, 2 or 3")
        if sorted(node.rotation) != [0, 1, 2]:
            raise ValueError(f"node {node.id!r}: rotation must be a permutation of (0, 1, 2)")
        by_id[node.id] = node
    children: dict[str | None, list[Node]] = {}
    for node in site.nodes:
        if node.parent_id is not None and node.parent_id not in by_id:
            raise ValueError(f"node {node.id!r}: unknown parent {node.parent_id!r}")
        children.setdefault(node.parent_id, []).append(node)
    out: list[_CNode] = []
    index: dict[str, int] = {}
    stack: list[tuple[Node, int]] = [(n, -1) for n in reversed(children.get(None, []))]
    while stack:
        node, parent = stack.pop()
        i = len(out)
        index[node.id] = i
        if parent < 0:
            voltage = node.voltage_v or 230.0
            root_map = node.rotation
            connected = frozenset(p for p in range(node.phases))
            cp = -1
            path: tuple[int, ...] = (i,)
        else:
            up = out[parent]
            voltage = node.voltage_v or up.voltage
            root_map = (up.root_map[node.rotation[0]], up.root_map[node.rotation[1]], up.root_map[node.rotation[2]])
            connected = frozenset(p for p in range(node.phases) if node.rotation[p] in up.connected)
            cp = up.charge_point
            path = (i, *up.path)
        if node.kind is NodeKind.CHARGE_POINT:
            cp = i
        out.append(_CNode(node, i, parent, voltage, root_map, connected, cp, path))
        for child in reversed(children.get(node.id, [])):
            stack.append((child, i))
    if len(out) != len(site.nodes):
        raise ValueError("the node parents form a cycle")
    return _Tree(out, index)


def _to_site_phases(values: Sequence[float], cn: _CNode, fill: float) -> list[float]:
    """Own-phase values -> site phases (min where two own phases land on one site phase)."""
    res = [fill, fill, fill]
    for p in cn.connected:
        r = cn.root_map[p]
        res[r] = values[p] if res[r] == fill else min(res[r], values[p])
    return res


# --------------------------------------------------------------------------------------------------
# The optimizer


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


def optimize(
    site: Site,
    sessions: Iterable[Session],
    *,
    at: datetime,
    config: OptimizerConfig | None = None,
    strategy: Strategy | None = None,
) -> AllocationResult:
    """Allocate the site's capacity at ``at`` among ``sessions``. See the module docstring."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    cfg = config or OptimizerConfig()
    strat = strategy or site.strategy
    return _Run(site, list(sessions), at, cfg, strat).result()


class _Run:
    def __init__(self, site: Site, sessions: list[Session], at: datetime, cfg: OptimizerConfig, strat: Strategy):
        self.site, self.at, self.cfg, self.strat = site, at, cfg, strat
        self.tree = tree = _compile(site)
        self.warnings: list[str] = []
        tz = zone(site.timezone)
        nn = len(tree.nodes)

        # Effective limits in site phases, and the uncontrolled load directly at each node.
        self.limit_a: list[list[float]] = []
        self.limit_w: list[float] = []
        self.sources: list[tuple[str, ...]] = []
        unc_a = [[0.0, 0.0, 0.0] for _ in range(nn)]
        unc_w = [0.0] * nn
        for cn in tree.nodes:
            node = cn.node
            if node.max_power_w is None and node.max_current_a is None and not node.windows and not node.signals:
                # No limit (most connectors): nothing to resolve.
                self.limit_a.append([INF, INF, INF])
                self.limit_w.append(INF)
                self.sources.append(())
            else:
                if node.windows or node.signals or node.safety_margin_pct:
                    eff = effective_limit(
                        max_power_w=node.max_power_w,
                        max_current_a=node.max_current_a,
                        safety_margin_pct=node.safety_margin_pct,
                        windows=node.windows,
                        signals=node.signals,
                        at=at,
                        tz=tz,
                    )
                    pw, cur, src = eff.max_power_w, eff.max_current_a, eff.sources
                else:
                    pw = INF if node.max_power_w is None else float(node.max_power_w)
                    cur = static_currents(node.max_current_a)
                    src = ("static",) if (pw != INF or min(cur) != INF) else ()
                self.limit_a.append(_to_site_phases(cur, cn, INF))
                self.limit_w.append(pw)
                self.sources.append(src)
            if node.other_load_a is not None or node.other_load_w is not None:
                k = len(cn.connected) or 1
                if node.other_load_a is not None:
                    # two own phases on one site phase add up
                    per = [0.0, 0.0, 0.0]
                    for p in cn.connected:
                        per[cn.root_map[p]] += float(node.other_load_a[p])
                    w = node.other_load_w if node.other_load_w is not None else sum(per) * cn.voltage
                else:
                    w = float(node.other_load_w or 0.0)
                    per = [0.0, 0.0, 0.0]
                    for p in cn.connected:
                        per[cn.root_map[p]] += w / (k * cn.voltage)
                for r in range(3):
                    unc_a[cn.index][r] += per[r]
                unc_w[cn.index] += float(w)

        # Sessions: controllable or reserved.
        self.sessions = sessions
        ns = len(sessions)
        self.s_node: list[int] = [-1] * ns
        self.s_phases: list[tuple[int, ...]] = [()] * ns
        self.s_volt: list[float] = [230.0] * ns
        self.s_pcoef: list[float] = [0.0] * ns  # W per level unit
        self.s_control: list[bool] = [False] * ns
        self.s_fixed_reason: list[Reason | None] = [None] * ns
        self.reserved_cp: set[int] = set()
        seen_ids: set[str] = set()
        for i, s in enumerate(sessions):
            if s.id in seen_ids:
                raise ValueError(f"duplicate session id {s.id!r}")
            seen_ids.add(s.id)
            ni = tree.by_id.get(s.connector_id)
            if ni is None:
                raise ValueError(f"session {s.id!r}: unknown connector {s.connector_id!r}")
            cn = tree.nodes[ni]
            self.s_node[i] = ni
            self.s_volt[i] = cn.voltage
            if s.supply is Supply.DC:
                phases: tuple[int, ...] = (0, 1, 2)
            else:
                k = s.vehicle_phases or 3
                phases = tuple(sorted({cn.root_map[p] for p in range(k) if p in cn.connected}))
            self.s_phases[i] = phases
            self.s_pcoef[i] = (3 if s.supply is Supply.DC else len(phases)) * cn.voltage
            if cn.charge_point >= 0 and tree.nodes[cn.charge_point].node.rejects_profiles:
                self.reserved_cp.add(cn.charge_point)
                self.s_fixed_reason[i] = Reason.PROFILES_REJECTED
            elif not phases:
                self.s_fixed_reason[i] = Reason.NOT_CONNECTED
            else:
                self.s_control[i] = True

        # Chargers that reject profiles: reserve their full static rating (whether or not a car is in).
        for cn in tree.nodes:
            if cn.node.kind is NodeKind.CHARGE_POINT and cn.node.rejects_profiles:
                self.reserved_cp.add(cn.index)
        self.reserved_a: dict[int, list[float]] = {}
        for cpi in sorted(self.reserved_cp):
            per, w = self._rating(cpi)
            self.reserved_a[cpi] = per
            for r in range(3):
                unc_a[cpi][r] += per[r]
            unc_w[cpi] += w

        # Uncontrolled load of each subtree (children come after parents in tree.nodes).
        self.sub_unc_a = [row[:] for row in unc_a]
        self.sub_unc_w = unc_w[:]
        for cn in reversed(tree.nodes):
            if cn.parent >= 0:
                pa = self.sub_unc_a[cn.parent]
                ca = self.sub_unc_a[cn.index]
                pa[0] += ca[0]
                pa[1] += ca[1]
                pa[2] += ca[2]
                self.sub_unc_w[cn.parent] += self.sub_unc_w[cn.index]

        self._build_constraints()

    # ---------------------------------------------------------------------------------------------
    def _rating(self, cpi: int) -> tuple[list[float], float]:
        """Full static rating of a charge point per site phase and in W (connectors' ratings if it has none)."""
        tree = self.tree
        cn = tree.nodes[cpi]
        node = cn.node
        k = len(cn.connected) or 1
        cur = static_currents(node.max_current_a)
        pw = INF if node.max_power_w is None else float(node.max_power_w)
        own = [min(cur[p], pw / (k * cn.voltage)) for p in range(3)]
        if all(own[p] == INF for p in cn.connected):
            # No rating on the charge point: the sum of its connectors' ratings.
            own = [0.0, 0.0, 0.0]
            for child in tree.nodes:
                if child.parent == cpi:
                    cw = INF if child.node.max_power_w is None else float(child.node.max_power_w)
                    c = min(min(static_currents(child.node.max_current_a)), cw / (k * cn.voltage))
                    for p in range(3):
                        own[p] += c
            if any(own[p] == INF for p in cn.connected) or not any(own):
                c = self.cfg.default_ac_max_current_a
                self.warnings.append(f"charge point {node.id!r} rejects profiles and has no rating: reserved {c:g} A")
                own = [c, c, c]
        per = [0.0, 0.0, 0.0]
        for p in cn.connected:
            per[cn.root_map[p]] += own[p]
        w = min(pw, sum(own[p] for p in cn.connected) * cn.voltage)
        return per, w

    # ---------------------------------------------------------------------------------------------
    def _build_constraints(self) -> None:
        tree, cfg = self.tree, self.cfg
        ns = len(self.sessions)
        nn = len(tree.nodes)
        # headroom of each node after uncontrolled load
        self.head_a = [
            [la[0] - ua[0], la[1] - ua[1], la[2] - ua[2]] for la, ua in zip(self.limit_a, self.sub_unc_a, strict=True)
        ]
        self.head_w = [self.limit_w[n] - self.sub_unc_w[n] for n in range(nn)]
        node_sessions: list[list[int]] = [[] for _ in range(nn)]
        for i in range(ns):
            if self.s_control[i]:
                for n in tree.nodes[self.s_node[i]].path:
                    node_sessions[n].append(i)

        # Session maximum (level units) from the vehicle, folded single-session nodes, draw cap.
        self.s_max = [0.0] * ns
        self.s_max_src: list[str] = [""] * ns
        self.s_min = [0.0] * ns
        self.s_step = [0.0] * ns
        self.s_cons: list[list[tuple[int, float]]] = [[] for _ in range(ns)]
        c_cap: list[float] = []
        c_node: list[int] = []
        c_phase: list[int] = []
        c_sessions: list[list[int]] = []
        self.draw_capped = [False] * ns
        for i, s in enumerate(self.sessions):
            if not self.s_control[i]:
                continue
            pco = self.s_pcoef[i]
            if s.supply is Supply.DC:
                vmax = INF if s.vehicle_max_power_w is None else s.vehicle_max_power_w / pco
                self.s_min[i] = cfg.dc_min_power_w / pco
                self.s_step[i] = cfg.power_step_w / pco
            else:
                vmax = INF if s.vehicle_max_current_a is None else float(s.vehicle_max_current_a)
                if s.vehicle_max_power_w is not None:
                    vmax = min(vmax, s.vehicle_max_power_w / pco)
                self.s_min[i] = cfg.min_current_a
                self.s_step[i] = cfg.current_step_a
            src = "vehicle"
            for n in tree.nodes[self.s_node[i]].path:
                if len(node_sessions[n]) != 1:
                    continue
                ha, hw = self.head_a[n], self.head_w[n]
                m = hw / pco
                for r in self.s_phases[i]:
                    m = min(m, ha[r])
                if m < vmax:
                    vmax = m
                    src = f"node {tree.nodes[n].node.id}"
            if vmax == INF:
                dc = s.supply is Supply.DC
                vmax = cfg.default_dc_max_power_w / pco if dc else cfg.default_ac_max_current_a
                src = "default maximum"
            # Redistribution of unused power.
            if s.supply is Supply.DC:
                meas, prev = s.measured_power_w, s.previous_limit_w
                thr, head = cfg.unused_threshold_w, cfg.unused_headroom_w
            else:
                meas, prev = s.measured_current_a, s.previous_limit_a
                thr, head = cfg.unused_threshold_a, cfg.unused_headroom_a
            if meas is not None and prev is not None and meas < prev - thr:
                cap = meas + head
                cap = cap / pco if s.supply is Supply.DC else cap
                cap = max(cap, self.s_min[i])
                if cap < vmax:
                    vmax = cap
                    src = "measured draw + headroom"
                    self.draw_capped[i] = True
            self.s_max[i] = max(vmax, 0.0)
            self.s_max_src[i] = src

        for cn in tree.nodes:
            members = node_sessions[cn.index]
            if len(members) < 2:
                continue
            n = cn.index
            ha = self.head_a[n]
            for r in range(3):
                if ha[r] == INF:
                    continue
                users = [i for i in members if r in self.s_phases[i]]
                if len(users) < 1:
                    continue
                c = len(c_cap)
                c_cap.append(ha[r])
                c_node.append(n)
                c_phase.append(r)
                c_sessions.append(users)
                for i in users:
                    self.s_cons[i].append((c, 1.0))
            if self.head_w[n] != INF:
                c = len(c_cap)
                c_cap.append(self.head_w[n])
                c_node.append(n)
                c_phase.append(-1)
                c_sessions.append(list(members))
                for i in members:
                    self.s_cons[i].append((c, self.s_pcoef[i]))
        self.c_cap = c_cap
        self.c_node = c_node
        self.c_phase = c_phase
        self.c_sessions = c_sessions
        self.c_load = [0.0] * len(c_cap)
        self.val = [0.0] * ns

    # ---------------------------------------------------------------------------------------------
    def _room(self, i: int) -> tuple[float, int]:
        """Largest level increase session i can take now and the constraint that limits it (-1: none)."""
        best, which = INF, -1
        cap, load = self.c_cap, self.c_load
        for c, coef in self.s_cons[i]:
            r = (cap[c] - load[c]) / coef
            if r < best:
                best, which = r, c
        return best, which

    def _binding(self, i: int) -> tuple[float, int]:
        """Like `_room`, but among (nearly) equally full constraints the one nearest the car is named."""
        best, _ = self._room(i)
        cap, load = self.c_cap, self.c_load
        for c, coef in reversed(self.s_cons[i]):
            if (cap[c] - load[c]) / coef <= best + 1e-9:
                return best, c
        return best, -1

    def _add(self, i: int, delta: float) -> None:
        self.val[i] += delta
        load = self.c_load
        for c, coef in self.s_cons[i]:
            load[c] += coef * delta

    def _default_departure(self, s: Session) -> datetime:
        cfg = self.cfg
        start = s.started_at or self.at
        if s.supply is Supply.DC:
            return start + cfg.default_dwell_dc
        if cfg.default_departure_local is None:
            return start + cfg.default_dwell
        # The next wall-clock `default_departure_local` after the start, in the site's zone (DST-safe).
        tz = zone(self.site.timezone)
        local = start.astimezone(tz)
        candidate = datetime.combine(local.date(), cfg.default_departure_local, tzinfo=tz)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), cfg.default_departure_local, tzinfo=tz)
        return candidate.astimezone(start.tzinfo)

    def _needed_level(self, i: int) -> tuple[float, float]:
        """(level needed to finish by the departure, laxity in hours).

        Unknown need: ``default_need_fraction`` of the battery minus what was delivered. Unknown
        departure: DC start + ``default_dwell_dc``; AC ``default_departure_local`` (next such local
        time after the start) or start + ``default_dwell``; once that guess has passed the session has
        no deadline (needed level 0, infinite laxity): it still gets its fair share, but no urgency it
        cannot justify.
        A session that cannot finish even at its maximum (negative laxity, e.g. a known departure in
        the past) asks for its maximum but is ranked after all sessions that can still finish
        (triage: otherwise hopeless sessions would take the power that lets others make it).
        """
        s, cfg = self.sessions[i], self.cfg
        if s.energy_needed_wh is not None:
            need = max(float(s.energy_needed_wh), 0.0)
        else:
            battery = s.battery_capacity_wh or cfg.default_battery_wh
            need = max(battery * cfg.default_need_fraction - s.energy_delivered_wh, 0.0)
        if s.departure is not None:
            dep = s.departure
        else:
            dep = self._default_departure(s)
            if dep <= self.at:
                return 0.0, INF
        hours = (dep - self.at).total_seconds() / 3600.0
        if need <= 0:
            return 0.0, INF
        pco = self.s_pcoef[i]
        max_w = self.s_max[i] * pco
        laxity = hours - (need / max_w if max_w > 0 else INF)
        if laxity < 0:  # cannot finish even at its maximum: as much as it can get, after those that can
            return self.s_max[i], laxity
        return min(need / (hours * self.cfg.departure_safety) / pco, self.s_max[i]), laxity

    # ---------------------------------------------------------------------------------------------
    def _rank(self) -> list[list[int]]:
        """Tiers of controllable session indices, each in rank order.

        Idle sessions (known to need nothing more, or drawing nothing: capped at the minimum by their
        measured draw) form a last tier, so they keep the minimum only if room is left after the others.
        """
        cfg = self.cfg
        q = cfg.rotation_quantum_wh
        idx = [i for i in range(len(self.sessions)) if self.s_control[i]]
        ss = self.sessions
        self.need_level: dict[int, float] = {}
        idle: dict[int, bool] = {}
        for i in idx:
            needed = ss[i].energy_needed_wh
            idle[i] = (needed is not None and needed <= 0) or (
                self.draw_capped[i] and self.s_max[i] <= self.s_min[i] + _EPS
            )
        lax: dict[int, float] = {}
        if self.strat is Strategy.DEPARTURE_AWARE:
            for i in idx:
                self.need_level[i], lax[i] = self._needed_level(i)
        key = {
            i: (
                idle[i],
                -ss[i].priority,
                lax.get(i, 0.0) < 0,  # hopeless: served after every session that can still make it
                abs(lax.get(i, 0.0)),  # least laxity first; among hopeless ones the closest to making it
                math.floor(ss[i].energy_delivered_wh / q),
                _crc(ss[i].id),
            )
            for i in idx
        }
        idx.sort(key=key.__getitem__)
        self.rank_pos = {i: pos for pos, i in enumerate(idx)}
        tiers: list[list[int]] = []
        last: tuple[bool, int] | None = None
        for i in idx:
            tier_key = (idle[i], 0 if self.strat is Strategy.EQUAL_SHARE or idle[i] else ss[i].priority)
            if tier_key != last:
                tiers.append([])
                last = tier_key
            tiers[-1].append(i)
        return tiers

    # ---------------------------------------------------------------------------------------------
    def _fill(self, members: list[int]) -> None:
        """Progressive filling from the current levels (floors) of `members` up to their maxima."""
        if not members:
            return
        val, smax = self.val, self.s_max
        cap, load = self.c_cap, self.c_load
        s_cons = self.s_cons
        nc = len(cap)
        saved_load = load[:]  # the event loop moves loads by rates; they are re-added exactly at the end
        saved_val = [val[i] for i in members]
        rate = [0.0] * nc
        ref = [0.0] * nc
        version = [0] * nc
        done = [False] * nc
        state: dict[int, int] = {}  # 0 waiting for its floor, 1 rising, 2 frozen
        order = sorted(members, key=val.__getitem__)
        for i in members:
            state[i] = 0
        heap_c: list[tuple[float, int, int]] = []
        heap_m: list[tuple[float, int]] = []
        pos = 0
        n_members = len(order)
        level = val[order[0]]
        for c in range(nc):
            ref[c] = level

        def touch(c: int, at_level: float) -> None:
            if rate[c] != 0.0:
                load[c] += rate[c] * (at_level - ref[c])
            ref[c] = at_level

        def reschedule(c: int, at_level: float) -> None:
            version[c] += 1
            r = rate[c]
            if r > _EPS:
                room = cap[c] - load[c]
                heapq.heappush(heap_c, (at_level + (room / r if room > 0 else 0.0), version[c], c))
            else:
                rate[c] = 0.0

        def freeze(i: int, at_level: float, dirty: set[int]) -> None:
            if state[i] == 1:
                val[i] = at_level
                for c, coef in s_cons[i]:
                    touch(c, at_level)
                    rate[c] -= coef
                    dirty.add(c)
            state[i] = 2

        while True:
            while heap_c and (done[heap_c[0][2]] or heap_c[0][1] != version[heap_c[0][2]]):
                heapq.heappop(heap_c)
            while heap_m and state[heap_m[0][1]] == 2:
                heapq.heappop(heap_m)
            next_c = heap_c[0][0] if heap_c else INF
            next_m = heap_m[0][0] if heap_m else INF
            while pos < n_members and state[order[pos]] == 2:
                pos += 1
            next_a = val[order[pos]] if pos < n_members else INF
            level = min(next_c, next_m, next_a)
            if level == INF:
                break
            dirty: set[int] = set()
            if next_c <= level:
                _, _, c = heapq.heappop(heap_c)
                done[c] = True
                for i in self.c_sessions[c]:
                    st = state.get(i)
                    if st is not None and st != 2:
                        freeze(i, level, dirty)
            elif next_m <= level:
                while heap_m and heap_m[0][0] <= level:
                    _, i = heapq.heappop(heap_m)
                    if state[i] == 1:
                        freeze(i, smax[i], dirty)
            else:
                while pos < n_members and val[order[pos]] <= level:
                    i = order[pos]
                    pos += 1
                    if state[i] != 0:
                        continue
                    if smax[i] <= level + _EPS:
                        state[i] = 2
                        continue
                    state[i] = 1
                    for c, coef in s_cons[i]:
                        touch(c, level)
                        rate[c] += coef
                        dirty.add(c)
                    heapq.heappush(heap_m, (smax[i], i))
            for c in dirty:
                if not done[c]:
                    reschedule(c, level)
        for i in members:
            if state[i] == 1:  # cannot happen (maxima are finite) but keep the books right
                val[i] = level if level != INF else val[i]
        load[:] = saved_load
        for i, before in zip(members, saved_val, strict=True):
            d = val[i] - before
            if d:
                for c, coef in s_cons[i]:
                    load[c] += coef * d

    def _round_down(self, members: list[int], floors: dict[int, float]) -> None:
        val, smax, load = self.val, self.s_max, self.c_load
        for i in members:
            v = val[i]
            if v <= 0.0 or v >= smax[i] - _EPS:
                new = min(v, smax[i])
            else:
                step = self.s_step[i]
                new = max(math.floor(v / step + 1e-9) * step, floors.get(i, 0.0))
            if new != v:
                val[i] = new
                d = new - v
                for c, coef in self.s_cons[i]:
                    load[c] += coef * d

    def _fill_up(self, order: list[int]) -> None:
        """Raise sessions by one step (or admit at the minimum) while room allows, in rank order.

        Loads only grow here, so a session that does not fit once never fits later in this pass:
        each round only revisits the sessions that moved.
        """
        val, smax, smin, step = self.val, self.s_max, self.s_min, self.s_step
        cap, load, s_cons = self.c_cap, self.c_load, self.s_cons
        active = order
        while active:
            moved: list[int] = []
            for i in active:
                v = val[i]
                if v <= 0.0:
                    if smax[i] < smin[i] - _EPS:
                        continue
                    delta = smin[i]
                else:
                    delta = min(step[i], smax[i] - v)
                    if delta <= _EPS:
                        continue
                need = delta - _EPS
                cons = s_cons[i]
                for c, coef in cons:
                    if cap[c] - load[c] < coef * need:
                        break
                else:
                    val[i] = v + delta
                    for c, coef in cons:
                        load[c] += coef * delta
                    moved.append(i)
            active = moved

    # ---------------------------------------------------------------------------------------------
    def _allocate(self) -> None:
        val, smax, smin = self.val, self.s_max, self.s_min
        self.admit_block: dict[int, int] = {}  # session -> constraint that refused the minimum
        for tier in self._rank():
            floors: dict[int, float] = {}
            if self.strat is Strategy.DEPARTURE_AWARE:
                for i in tier:
                    target = min(self.need_level.get(i, 0.0), smax[i])
                    if target <= 0.0 or smax[i] < smin[i] - _EPS:
                        continue
                    step = self.s_step[i]
                    target = max(smin[i], min(math.ceil(target / step - 1e-9) * step, smax[i]))
                    room, _ = self._room(i)
                    give = min(target, room)
                    if give < smax[i] - _EPS:
                        give = math.floor(give / step + 1e-9) * step
                    if give >= smin[i] - _EPS:
                        self._add(i, give)
                        floors[i] = give
            admitted: list[int] = []
            for i in tier:
                if val[i] > 0.0:
                    admitted.append(i)
                    continue
                if smax[i] < smin[i] - _EPS:
                    continue
                room, which = self._room(i)
                if room >= smin[i] - _EPS:
                    self._add(i, smin[i])
                    floors[i] = smin[i]
                    admitted.append(i)
                else:
                    self.admit_block[i] = which
            self._fill(admitted)
            self._round_down(admitted, floors)
            self._fill_up(tier)

    # ---------------------------------------------------------------------------------------------
    def result(self) -> AllocationResult:
        self._allocate()
        tree = self.tree
        nn = len(tree.nodes)
        alloc_a = [[0.0, 0.0, 0.0] for _ in range(nn)]
        alloc_w = [0.0] * nn
        out: dict[str, SessionAllocation] = {}
        strat = self.strat
        for i, s in enumerate(self.sessions):
            ni = self.s_node[i]
            cn = tree.nodes[ni]
            cp = tree.nodes[cn.charge_point].node if cn.charge_point >= 0 else None
            unit = cp.rate_unit if cp is not None else RateUnit.AMPS
            phases = self.s_phases[i]
            volt = self.s_volt[i]
            pco = self.s_pcoef[i]
            binding: str | None = None
            binding_phase: str | None = None
            room = 0.0
            current = [0.0, 0.0, 0.0]
            if not self.s_control[i]:
                reason = self.s_fixed_reason[i] or Reason.NOT_CONNECTED
                if reason is Reason.PROFILES_REJECTED and cp is not None:
                    per = self.reserved_a.get(cn.charge_point, [0.0, 0.0, 0.0])
                    current = [per[0], per[1], per[2]]
                    binding = cp.id
                level = max(current)
                out[s.id] = SessionAllocation(
                    session_id=s.id,
                    connector_id=s.connector_id,
                    charge_point_id=cp.id if cp else None,
                    supply=s.supply,
                    controlled=False,
                    level_a=level,
                    current_a=(current[0], current[1], current[2]),
                    power_w=sum(current) * volt,
                    limit=0.0,
                    unit=unit,
                    number_phases=len(phases),
                    max_level_a=level,
                    min_level_a=0.0,
                    reason=reason,
                    binding_node_id=binding,
                    binding_phase=None,
                    room_a=0.0,
                    max_source="",
                    strategy=strat,
                    rank=0,
                    priority=s.priority,
                    needed_level_a=None,
                    draw_capped=False,
                    watts_per_amp=pco,
                )
                continue
            v = self.val[i]
            if v < 0.0:
                v = 0.0
            power = v * pco
            per_phase = v if s.supply is Supply.AC else power / (3 * volt)
            a = alloc_a[ni]
            for r in phases:
                current[r] = per_phase
                a[r] += per_phase
            alloc_w[ni] += power
            smax = self.s_max[i]
            src = self.s_max_src[i]
            if v <= 0.0 and smax < self.s_min[i] - _EPS:
                if src.startswith("node "):  # a node it has to itself has no room for the minimum
                    reason = Reason.NO_CAPACITY
                    binding = src.removeprefix("node ")
                    room = smax
                else:  # the car (or its draw) cannot take the minimum
                    reason = Reason.BELOW_MINIMUM
            elif v > 0.0 and v >= smax - _EPS:
                reason = Reason.AT_MAXIMUM
                binding = src.removeprefix("node ") if src.startswith("node ") else None
            else:
                reason = Reason.NO_CAPACITY if v <= 0.0 else Reason.NODE_LIMIT
                room, which = self._binding(i)
                if which >= 0:
                    binding = tree.nodes[self.c_node[which]].node.id
                    ph = self.c_phase[which]
                    binding_phase = "power" if ph < 0 else PHASE_NAMES[ph]
            # The value on the wire is rounded down (0.1 A / 1 W) so a charger never gets more than allocated.
            if unit is RateUnit.WATTS:
                limit = float(math.floor(power + 1e-6))
            else:
                limit = math.floor(per_phase * 10 + 1e-6) / 10
            out[s.id] = SessionAllocation(
                session_id=s.id,
                connector_id=s.connector_id,
                charge_point_id=cp.id if cp else None,
                supply=s.supply,
                controlled=True,
                level_a=v,
                current_a=(current[0], current[1], current[2]),
                power_w=power,
                limit=limit,
                unit=unit,
                number_phases=len(phases),
                max_level_a=smax,
                min_level_a=self.s_min[i],
                reason=reason,
                binding_node_id=binding,
                binding_phase=binding_phase,
                room_a=max(room, 0.0),
                max_source=src,
                strategy=strat,
                rank=self.rank_pos.get(i, -1) + 1,
                priority=s.priority,
                needed_level_a=self.need_level.get(i),
                draw_capped=self.draw_capped[i],
                watts_per_amp=pco,
            )

        # Allocated load was put on the connectors; roll it up (children come after their parents).
        for cn in reversed(tree.nodes):
            if cn.parent >= 0:
                pa, ca = alloc_a[cn.parent], alloc_a[cn.index]
                pa[0] += ca[0]
                pa[1] += ca[1]
                pa[2] += ca[2]
                alloc_w[cn.parent] += alloc_w[cn.index]
        nodes_out: dict[str, NodeAllocation] = {}
        for cn in tree.nodes:
            n = cn.index
            la = self.limit_a[n]
            ua = self.sub_unc_a[n]
            aa = alloc_a[n]
            nodes_out[cn.node.id] = NodeAllocation(
                node_id=cn.node.id,
                kind=cn.node.kind,
                limit_a=(la[0], la[1], la[2]),
                limit_w=self.limit_w[n],
                allocated_a=(aa[0], aa[1], aa[2]),
                allocated_w=alloc_w[n],
                uncontrolled_a=(ua[0], ua[1], ua[2]),
                uncontrolled_w=self.sub_unc_w[n],
                sources=self.sources[n],
            )
            if (
                ua[0] > la[0] + 1e-6
                or ua[1] > la[1] + 1e-6
                or ua[2] > la[2] + 1e-6
                or self.sub_unc_w[n] > self.limit_w[n]
            ):
                self.warnings.append(
                    f"node {cn.node.id!r}: uncontrolled load (non-EV load, chargers rejecting profiles) "
                    f"is above its limit; controlled sessions below it get nothing"
                )
        return AllocationResult(
            at=self.at,
            strategy=self.strat,
            sessions=out,
            nodes=nodes_out,
            warnings=tuple(self.warnings),
        )


__all__ = [
    "AllocationResult",
    "GridSignal",
    "Node",
    "NodeAllocation",
    "NodeKind",
    "OptimizerConfig",
    "RateUnit",
    "Reason",
    "Session",
    "SessionAllocation",
    "Site",
    "Strategy",
    "Supply",
    "TimeOfUseWindow",
    "optimize",
]
