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
        """Why, as a sentence in the active language (rendered by `apps.energy.explain`, which needs Django)."""
        from apps.energy.explain import explain

        return explain(self)


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
    connected: tuple[int, ...]  # own phases wired through to the root, ascending
    charge_point: int  # nearest charge point ancestor-or-self, -1 if none
    path: tuple[int, ...] = ()  # self and ancestors up to the root


@dataclass(slots=True)
class _Tree:
    nodes: list[_CNode]
    by_id: dict[str, int]


_ROTATIONS = frozenset({(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)})


def _check_node(node: Node) -> None:
    if node.phases not in (1, 2, 3):
        raise ValueError(f"node {node.id!r}: phases must be 1, 2 or 3")
    if sorted(node.rotation) != [0, 1, 2]:
        raise ValueError(f"node {node.id!r}: rotation must be a permutation of (0, 1, 2)")


def _compile(site: Site) -> _Tree:
    by_id: dict[str, Node] = {}
    children: dict[str | None, list[Node]] = {}
    rotations = _ROTATIONS
    for node in site.nodes:
        nid = node.id
        if nid in by_id:
            raise ValueError(f"duplicate node id {nid!r}")
        rot = node.rotation
        if node.phases not in (1, 2, 3) or not isinstance(rot, tuple) or rot not in rotations:
            _check_node(node)
            rot_t = tuple(rot)
            if rot_t not in rotations:  # pragma: no cover - _check_node raised already
                raise ValueError(f"node {nid!r}: rotation must be a permutation of (0, 1, 2)")
        by_id[nid] = node
        kids = children.get(node.parent_id)
        if kids is None:
            children[node.parent_id] = [node]
        else:
            kids.append(node)
    for pid in children:
        if pid is not None and pid not in by_id:
            bad = children[pid][0]
            raise ValueError(f"node {bad.id!r}: unknown parent {pid!r}")
    out: list[_CNode] = []
    index: dict[str, int] = {}
    charge_point_kind = NodeKind.CHARGE_POINT
    # (parent index, rotation, phases) -> (root map, connected): siblings are mostly wired alike.
    wiring: dict[tuple[int, Rotation, int], tuple[Rotation, tuple[int, ...]]] = {}
    stack: list[tuple[Node, int]] = [(n, -1) for n in reversed(children.get(None, []))]
    while stack:
        node, parent = stack.pop()
        i = len(out)
        index[node.id] = i
        rot = node.rotation
        if type(rot) is not tuple:
            rot = tuple(rot)  # type: ignore[assignment]
        if parent < 0:
            voltage = node.voltage_v or 230.0
            root_map = rot
            connected: tuple[int, ...] = tuple(range(node.phases))
            cp = -1
            path: tuple[int, ...] = (i,)
        else:
            up = out[parent]
            voltage = node.voltage_v or up.voltage
            key = (parent, rot, node.phases)
            wired = wiring.get(key)
            if wired is None:
                urm, ucon = up.root_map, up.connected
                wired = (
                    (urm[rot[0]], urm[rot[1]], urm[rot[2]]),
                    tuple(p for p in range(node.phases) if rot[p] in ucon),
                )
                wiring[key] = wired
            root_map, connected = wired
            cp = up.charge_point
            path = (i, *up.path)
        if node.kind is charge_point_kind:
            cp = i
        out.append(_CNode(node, i, parent, voltage, root_map, connected, cp, path))
        kids = children.get(node.id)
        if kids:
            for child in reversed(kids):
                stack.append((child, i))
    if len(out) != len(site.nodes):
        raise ValueError("the node parents form a cycle")
    return _Tree(out, index)


def _to_site_phases(values: Sequence[float], cn: _CNode, fill: float) -> PhaseValues:
    """Own-phase values -> site phases (min where two own phases land on one site phase)."""
    res = [fill, fill, fill]
    for p in cn.connected:
        r = cn.root_map[p]
        res[r] = values[p] if res[r] == fill else min(res[r], values[p])
    return (res[0], res[1], res[2])


# --------------------------------------------------------------------------------------------------
# The optimizer


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


_NO_LIMIT: PhaseValues = (INF, INF, INF)
_ZERO3: PhaseValues = (0.0, 0.0, 0.0)


class _Run:
    def __init__(self, site: Site, sessions: list[Session], at: datetime, cfg: OptimizerConfig, strat: Strategy):
        self.site, self.at, self.cfg, self.strat = site, at, cfg, strat
        self.tree = tree = _compile(site)
        self.warnings: list[str] = []
        tz = zone(site.timezone)
        tnodes = tree.nodes
        nn = len(tnodes)

        # Effective limits in site phases, and the uncontrolled load directly at each node.
        # Rows of nodes without a limit / without load share one immutable triple (most nodes).
        limit_a: list[PhaseValues] = []
        limit_w: list[float] = []
        sources: list[tuple[str, ...]] = []
        unc: dict[int, tuple[list[float], float]] = {}  # node -> (per site phase, W), only where there is load
        no_limit, static_src = _NO_LIMIT, ("static",)
        for cn in tnodes:
            node = cn.node
            mp, mc = node.max_power_w, node.max_current_a
            if mp is None and mc is None and not node.windows and not node.signals:
                # No limit (most connectors): nothing to resolve.
                limit_a.append(no_limit)
                limit_w.append(INF)
                sources.append(())
            else:
                if node.windows or node.signals or node.safety_margin_pct:
                    eff = effective_limit(
                        max_power_w=mp,
                        max_current_a=mc,
                        safety_margin_pct=node.safety_margin_pct,
                        windows=node.windows,
                        signals=node.signals,
                        at=at,
                        tz=tz,
                    )
                    pw, src = eff.max_power_w, eff.sources
                    limit_a.append(_to_site_phases(eff.max_current_a, cn, INF))
                elif mc is None or type(mc) is float or type(mc) is int:
                    pw = INF if mp is None else float(mp)
                    if mc is None:
                        limit_a.append(no_limit)
                        src = static_src if pw != INF else ()
                    else:
                        v = float(mc)
                        rm = cn.root_map
                        row = [INF, INF, INF]
                        for p in cn.connected:
                            row[rm[p]] = v
                        limit_a.append((row[0], row[1], row[2]))
                        src = static_src
                else:
                    pw = INF if mp is None else float(mp)
                    cur = static_currents(mc)
                    src = static_src if (pw != INF or min(cur) != INF) else ()
                    limit_a.append(_to_site_phases(cur, cn, INF))
                limit_w.append(pw)
                sources.append(src)
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
                unc[cn.index] = (per, float(w))
        self.limit_a = limit_a
        self.limit_w = limit_w
        self.sources = sources

        # Sessions: controllable or reserved.
        self.sessions = sessions
        ns = len(sessions)
        s_node: list[int] = [-1] * ns
        s_phases: list[tuple[int, ...]] = [()] * ns
        s_volt: list[float] = [230.0] * ns
        s_pcoef: list[float] = [0.0] * ns  # W per level unit
        s_control: list[bool] = [False] * ns
        s_fixed_reason: list[Reason | None] = [None] * ns
        self.reserved_cp: set[int] = set()
        seen_ids: set[str] = set()
        by_id = tree.by_id
        dc_supply = Supply.DC
        all_phases = (0, 1, 2)
        phase_sets: dict[tuple[Rotation, tuple[int, ...], int], tuple[int, ...]] = {}
        for i, s in enumerate(sessions):
            sid = s.id
            if sid in seen_ids:
                raise ValueError(f"duplicate session id {sid!r}")
            seen_ids.add(sid)
            ni = by_id.get(s.connector_id)
            if ni is None:
                raise ValueError(f"session {sid!r}: unknown connector {s.connector_id!r}")
            cn = tnodes[ni]
            s_node[i] = ni
            volt = cn.voltage
            s_volt[i] = volt
            if s.supply is dc_supply:
                phases: tuple[int, ...] = all_phases
                s_pcoef[i] = 3 * volt
            else:
                k = s.vehicle_phases or 3
                key = (cn.root_map, cn.connected, k)
                phases_k = phase_sets.get(key)
                if phases_k is None:
                    rm, con = cn.root_map, cn.connected
                    phases_k = tuple(sorted({rm[p] for p in range(k) if p in con}))
                    phase_sets[key] = phases_k
                phases = phases_k
                s_pcoef[i] = len(phases) * volt
            s_phases[i] = phases
            cpi = cn.charge_point
            if cpi >= 0 and tnodes[cpi].node.rejects_profiles:
                self.reserved_cp.add(cpi)
                s_fixed_reason[i] = Reason.PROFILES_REJECTED
            elif not phases:
                s_fixed_reason[i] = Reason.NOT_CONNECTED
            else:
                s_control[i] = True
        self.s_node, self.s_phases, self.s_volt, self.s_pcoef = s_node, s_phases, s_volt, s_pcoef
        self.s_control, self.s_fixed_reason = s_control, s_fixed_reason

        # Chargers that reject profiles: reserve their full static rating (whether or not a car is in).
        cp_kind = NodeKind.CHARGE_POINT
        for cn in tnodes:
            if cn.node.rejects_profiles and cn.node.kind is cp_kind:
                self.reserved_cp.add(cn.index)
        self.reserved_a: dict[int, list[float]] = {}
        for cpi in sorted(self.reserved_cp):
            per, w = self._rating(cpi)
            self.reserved_a[cpi] = per
            own = unc.get(cpi)
            if own is None:
                unc[cpi] = (per[:], w)
            else:
                own_a = own[0]
                own_a[0] += per[0]
                own_a[1] += per[1]
                own_a[2] += per[2]
                unc[cpi] = (own_a, own[1] + w)

        # Uncontrolled load of each subtree: each loaded node (few: measured loads, reserved chargers)
        # adds to itself and its ancestors; every other node shares one zero row.
        sub_a: list[PhaseValues | list[float]] = [_ZERO3] * nn
        sub_w = [0.0] * nn
        if unc:
            rows: dict[int, list[float]] = {}
            for n in sorted(unc, reverse=True):
                per, w = unc[n]
                for m in tnodes[n].path:
                    acc = rows.get(m)
                    if acc is None:
                        rows[m] = acc = [0.0, 0.0, 0.0]
                    acc[0] += per[0]
                    acc[1] += per[1]
                    acc[2] += per[2]
                    sub_w[m] += w
            for m, acc in rows.items():
                sub_a[m] = acc
        self.sub_unc_a = sub_a
        self.sub_unc_w = sub_w

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
        tnodes = tree.nodes
        sessions = self.sessions
        ns = len(sessions)
        nn = len(tnodes)
        limit_a, limit_w, sub_a, sub_w = self.limit_a, self.limit_w, self.sub_unc_a, self.sub_unc_w
        s_control, s_node, s_phases, s_pcoef = self.s_control, self.s_node, self.s_phases, self.s_pcoef
        zero3, no_limit = _ZERO3, _NO_LIMIT

        # Headroom of each node after uncontrolled load (unlimited, unloaded nodes share one row).
        head_a: list[PhaseValues] = []
        for la, ua in zip(limit_a, sub_a, strict=True):
            if la is no_limit or ua is zero3:
                head_a.append(la)
            else:
                head_a.append((la[0] - ua[0], la[1] - ua[1], la[2] - ua[2]))
        head_w = [lw - uw if uw else lw for lw, uw in zip(limit_w, sub_w, strict=True)]
        self.head_a, self.head_w = head_a, head_w
        node_sessions: list[list[int] | None] = [None] * nn
        controlled: list[int] = []
        for i in range(ns):
            if s_control[i]:
                controlled.append(i)
                for n in tnodes[s_node[i]].path:
                    members = node_sessions[n]
                    if members is None:
                        node_sessions[n] = [i]
                    else:
                        members.append(i)

        # Session maximum (level units) from the vehicle, folded single-session nodes, draw cap.
        s_max = [0.0] * ns
        s_max_src: list[str] = [""] * ns
        s_min = [0.0] * ns
        s_step = [0.0] * ns
        s_cons: list[list[tuple[int, float]]] = [[] for _ in range(ns)]
        draw_capped = [False] * ns
        dc_supply = Supply.DC
        dc_min, ac_min = cfg.dc_min_power_w, cfg.min_current_a
        p_step, a_step = cfg.power_step_w, cfg.current_step_a
        for i in controlled:
            s = sessions[i]
            pco = s_pcoef[i]
            dc = s.supply is dc_supply
            if dc:
                vmax = INF if s.vehicle_max_power_w is None else s.vehicle_max_power_w / pco
                s_min[i] = dc_min / pco
                s_step[i] = p_step / pco
            else:
                vmax = INF if s.vehicle_max_current_a is None else float(s.vehicle_max_current_a)
                if s.vehicle_max_power_w is not None:
                    vmax = min(vmax, s.vehicle_max_power_w / pco)
                s_min[i] = ac_min
                s_step[i] = a_step
            src = "vehicle"
            phases = s_phases[i]
            for n in tnodes[s_node[i]].path:
                members = node_sessions[n]
                if members is None or len(members) != 1:
                    continue
                ha = head_a[n]
                m = head_w[n] / pco
                for r in phases:
                    if ha[r] < m:
                        m = ha[r]
                if m < vmax:
                    vmax = m
                    src = f"node {tnodes[n].node.id}"
            if vmax == INF:
                vmax = cfg.default_dc_max_power_w / pco if dc else cfg.default_ac_max_current_a
                src = "default maximum"
            # Redistribution of unused power.
            if dc:
                meas, prev = s.measured_power_w, s.previous_limit_w
                thr, head = cfg.unused_threshold_w, cfg.unused_headroom_w
            else:
                meas, prev = s.measured_current_a, s.previous_limit_a
                thr, head = cfg.unused_threshold_a, cfg.unused_headroom_a
            if meas is not None and prev is not None and meas < prev - thr:
                cap = meas + head
                cap = cap / pco if dc else cap
                cap = max(cap, s_min[i])
                if cap < vmax:
                    vmax = cap
                    src = "measured draw + headroom"
                    draw_capped[i] = True
            s_max[i] = max(vmax, 0.0)
            s_max_src[i] = src

        # Shared constraints, numbered in tree order, per node: L1, L2, L3, then power.
        # A constraint that cannot bind (its sessions' maxima together fit under it, e.g. a 32 A
        # charger with two 16 A cars) is left out: it would never saturate, and leaving it out
        # changes no allocation but saves most of the work on large sites.
        c_cap: list[float] = []
        c_node: list[int] = []
        c_phase: list[int] = []
        c_sessions: list[list[int]] = []
        level_max = s_max.__getitem__
        s_wmax = [m * k for m, k in zip(s_max, s_pcoef, strict=True)]
        watt_max = s_wmax.__getitem__
        for n in range(nn):
            members = node_sessions[n]
            if members is None or len(members) < 2:
                continue
            ha = head_a[n]
            if (
                ha is not no_limit
                and (ha[0] != INF or ha[1] != INF or ha[2] != INF)
                and sum(map(level_max, members)) > min(ha)
            ):
                users: tuple[list[int], list[int], list[int]] = ([], [], [])
                for i in members:
                    for r in s_phases[i]:
                        users[r].append(i)
                kept = -1  # the last phase constraint made for this node
                for r in (0, 1, 2):
                    cap_r = ha[r]
                    u = users[r]
                    if cap_r == INF or not u or sum(map(level_max, u)) <= cap_r:
                        continue
                    if kept >= 0 and c_cap[kept] == cap_r and c_sessions[kept] == u:
                        # Same sessions, same cap (e.g. 3-phase cars under a symmetric limit): one
                        # constraint does for both. It is named after the later phase, the one a
                        # scan from the car upwards would have reported among the equals.
                        c_phase[kept] = r
                        continue
                    c = len(c_cap)
                    kept = c
                    c_cap.append(cap_r)
                    c_node.append(n)
                    c_phase.append(r)
                    c_sessions.append(u)
                    con = (c, 1.0)
                    for i in u:
                        s_cons[i].append(con)
            hw = head_w[n]
            if hw != INF and sum(map(watt_max, members)) > hw:
                c = len(c_cap)
                c_cap.append(hw)
                c_node.append(n)
                c_phase.append(-1)
                c_sessions.append(members)
                for i in members:
                    s_cons[i].append((c, s_pcoef[i]))
        self.s_max, self.s_max_src, self.s_min, self.s_step = s_max, s_max_src, s_min, s_step
        self.s_cons, self.draw_capped = s_cons, draw_capped
        self.c_cap = c_cap
        self.c_node = c_node
        self.c_phase = c_phase
        self.c_sessions = c_sessions
        self.c_load = [0.0] * len(c_cap)
        self.val = [0.0] * ns

    # ---------------------------------------------------------------------------------------------
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
        q = self.cfg.rotation_quantum_wh
        ss = self.sessions
        s_control, draw_capped, s_max, s_min = self.s_control, self.draw_capped, self.s_max, self.s_min
        departure_aware = self.strat is Strategy.DEPARTURE_AWARE
        by_priority = self.strat is not Strategy.EQUAL_SHARE
        self.need_level: dict[int, float] = {}
        need_level = self.need_level
        floor, crc = math.floor, zlib.crc32
        keyed: list[tuple[tuple[bool, int, bool, float, int, int], int]] = []
        for i, s in enumerate(ss):
            if not s_control[i]:
                continue
            needed = s.energy_needed_wh
            idle = (needed is not None and needed <= 0) or (draw_capped[i] and s_max[i] <= s_min[i] + _EPS)
            lax = 0.0
            if departure_aware:
                need_level[i], lax = self._needed_level(i)
            keyed.append(
                (
                    (
                        idle,
                        -s.priority,
                        lax < 0,  # hopeless: served after every session that can still make it
                        abs(lax),  # least laxity first; among hopeless ones the closest to making it
                        floor(s.energy_delivered_wh / q),
                        crc(s.id.encode()),
                    ),
                    i,  # equal keys keep the input order
                )
            )
        keyed.sort()
        rank_pos = [-1] * len(ss)
        tiers: list[list[int]] = []
        last: tuple[bool, int] | None = None
        tier: list[int] = []
        for pos, (key, i) in enumerate(keyed):
            rank_pos[i] = pos
            idle = key[0]
            tier_key = (idle, -key[1] if by_priority and not idle else 0)
            if tier_key != last:
                tier = []
                tiers.append(tier)
                last = tier_key
            tier.append(i)
        self.rank_pos = rank_pos
        return tiers

    # ---------------------------------------------------------------------------------------------
    def _fill(self, members: list[int]) -> None:
        """Progressive filling from the current levels (floors) of `members` up to their maxima.

        Event driven: a constraint's load grows at the sum of the coefficients of its rising sessions
        (``rate``), so the level at which it saturates is known; the next event is the nearest
        saturation, a session reaching its maximum, or a waiting session's floor being reached.
        """
        if not members:
            return
        val, smax = self.val, self.s_max
        cap, load = self.c_cap, self.c_load
        s_cons, c_sessions = self.s_cons, self.c_sessions
        nc = len(cap)
        saved_load = load[:]  # the event loop moves loads by rates; they are re-added exactly at the end
        saved_val = [val[i] for i in members]
        rate = [0.0] * nc
        version = [0] * nc
        done = [False] * nc
        state: dict[int, int] = dict.fromkeys(members, 0)  # 0 waiting for its floor, 1 rising, 2 frozen
        order = sorted(members, key=val.__getitem__)
        level = val[order[0]]
        ref = [level] * nc  # level at which each constraint's load was last brought up to date
        heap_c: list[tuple[float, int, int]] = []
        heap_m: list[tuple[float, int]] = []
        push, pop = heapq.heappush, heapq.heappop
        pos = 0
        n_members = len(order)
        n_rising = 0
        eps = _EPS
        inf = INF

        while True:
            while heap_c:
                top = heap_c[0]
                c = top[2]
                if done[c] or top[1] != version[c]:
                    pop(heap_c)
                else:
                    break
            while heap_m and state[heap_m[0][1]] == 2:
                pop(heap_m)
            next_c = heap_c[0][0] if heap_c else inf
            next_m = heap_m[0][0] if heap_m else inf
            while pos < n_members and state[order[pos]] == 2:
                pos += 1
            next_a = val[order[pos]] if pos < n_members else inf
            level = next_c if next_c < next_m else next_m
            if next_a < level:
                level = next_a
            if level == inf:
                break
            dirty: set[int] = set()
            if next_c <= level:
                c = pop(heap_c)[2]
                done[c] = True
                if pos >= n_members:
                    rising = [i for i in c_sessions[c] if state.get(i) == 1]
                    if len(rising) == n_rising:
                        # Every session still rising is under this constraint and none waits for its
                        # floor: they all stop here, and nothing is left to schedule.
                        for i in rising:
                            val[i] = level
                            state[i] = 2
                        n_rising = 0
                        break
                for i in c_sessions[c]:
                    if state.get(i) == 1:  # freeze at this level
                        n_rising -= 1
                        val[i] = level
                        for c2, coef in s_cons[i]:
                            r = rate[c2]
                            if r != 0.0:
                                load[c2] += r * (level - ref[c2])
                            ref[c2] = level
                            rate[c2] = r - coef
                            dirty.add(c2)
                        state[i] = 2
                    elif i in state:
                        state[i] = 2
            elif next_m <= level:
                while heap_m and heap_m[0][0] <= level:
                    i = pop(heap_m)[1]
                    if state[i] == 1:  # freeze at its maximum
                        n_rising -= 1
                        at_level = smax[i]
                        val[i] = at_level
                        for c2, coef in s_cons[i]:
                            r = rate[c2]
                            if r != 0.0:
                                load[c2] += r * (at_level - ref[c2])
                            ref[c2] = at_level
                            rate[c2] = r - coef
                            dirty.add(c2)
                        state[i] = 2
            else:
                while pos < n_members and val[order[pos]] <= level:
                    i = order[pos]
                    pos += 1
                    if state[i] != 0:
                        continue
                    if smax[i] <= level + eps:
                        state[i] = 2
                        continue
                    state[i] = 1
                    n_rising += 1
                    for c2, coef in s_cons[i]:
                        r = rate[c2]
                        if r != 0.0:
                            load[c2] += r * (level - ref[c2])
                        ref[c2] = level
                        rate[c2] = r + coef
                        dirty.add(c2)
                    push(heap_m, (smax[i], i))
            for c in dirty:
                if done[c]:
                    continue
                version[c] += 1
                r = rate[c]
                if r > eps:
                    room = cap[c] - load[c]
                    push(heap_c, (level + (room / r if room > 0 else 0.0), version[c], c))
                else:
                    rate[c] = 0.0
        for i in members:
            if state[i] == 1:  # cannot happen (maxima are finite) but keep the books right
                val[i] = level if level != inf else val[i]
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
        val, smax, smin, s_step = self.val, self.s_max, self.s_min, self.s_step
        s_cons, cap, load = self.s_cons, self.c_cap, self.c_load
        eps = _EPS
        departure_aware = self.strat is Strategy.DEPARTURE_AWARE
        for tier in self._rank():
            floors: dict[int, float] = {}
            if departure_aware:
                need_level = self.need_level
                for i in tier:
                    target = min(need_level.get(i, 0.0), smax[i])
                    if target <= 0.0 or smax[i] < smin[i] - eps:
                        continue
                    step = s_step[i]
                    target = max(smin[i], min(math.ceil(target / step - 1e-9) * step, smax[i]))
                    room = INF
                    for c, coef in s_cons[i]:
                        r = (cap[c] - load[c]) / coef
                        if r < room:
                            room = r
                    give = min(target, room)
                    if give < smax[i] - eps:
                        give = math.floor(give / step + 1e-9) * step
                    if give >= smin[i] - eps:
                        val[i] += give
                        for c, coef in s_cons[i]:
                            load[c] += coef * give
                        floors[i] = give
            # Admission in rank order: the minimum where every constraint it touches has room for it.
            admitted: list[int] = []
            for i in tier:
                if val[i] > 0.0:
                    admitted.append(i)
                    continue
                lo = smin[i]
                if smax[i] < lo - eps:
                    continue
                need = lo - eps
                cons = s_cons[i]
                for c, coef in cons:
                    if (cap[c] - load[c]) / coef < need:
                        break
                else:
                    val[i] += lo
                    for c, coef in cons:
                        load[c] += coef * lo
                    floors[i] = lo
                    admitted.append(i)
            self._fill(admitted)
            self._round_down(admitted, floors)
            self._fill_up(tier)

    # ---------------------------------------------------------------------------------------------
    def result(self) -> AllocationResult:
        self._allocate()
        tree = self.tree
        tnodes = tree.nodes
        nn = len(tnodes)
        # Allocated load per node (only nodes above a session get a row; the others share a zero row).
        alloc_a: list[list[float] | None] = [None] * nn
        alloc_w = [0.0] * nn
        any_alloc = False
        out: dict[str, SessionAllocation] = {}
        strat = self.strat
        val, s_max_l, s_min_l, s_max_src = self.val, self.s_max, self.s_min, self.s_max_src
        s_cons, cap, load = self.s_cons, self.c_cap, self.c_load
        c_node, c_phase = self.c_node, self.c_phase
        rank_pos, need_level, draw_capped = self.rank_pos, self.need_level, self.draw_capped
        dc_supply, amps_unit, watts_unit = Supply.DC, RateUnit.AMPS, RateUnit.WATTS
        for i, s in enumerate(self.sessions):
            ni = self.s_node[i]
            cn = tnodes[ni]
            cpi = cn.charge_point
            cp = tnodes[cpi].node if cpi >= 0 else None
            cp_id = cp.id if cp is not None else None
            unit = cp.rate_unit if cp is not None else amps_unit
            phases = self.s_phases[i]
            volt = self.s_volt[i]
            pco = self.s_pcoef[i]
            binding: str | None = None
            binding_phase: str | None = None
            room = 0.0
            if not self.s_control[i]:
                reason = self.s_fixed_reason[i] or Reason.NOT_CONNECTED
                current = [0.0, 0.0, 0.0]
                if reason is Reason.PROFILES_REJECTED and cp is not None:
                    per = self.reserved_a.get(cpi, [0.0, 0.0, 0.0])
                    current = [per[0], per[1], per[2]]
                    binding = cp.id
                level = max(current)
                out[s.id] = SessionAllocation(
                    s.id,
                    s.connector_id,
                    cp_id,
                    s.supply,
                    False,
                    level,
                    (current[0], current[1], current[2]),
                    sum(current) * volt,
                    0.0,
                    unit,
                    len(phases),
                    level,
                    0.0,
                    reason,
                    binding,
                    None,
                    0.0,
                    "",
                    strat,
                    0,
                    s.priority,
                    None,
                    False,
                    pco,
                )
                continue
            v = val[i]
            if v < 0.0:
                v = 0.0
            power = v * pco
            dc = s.supply is dc_supply
            per_phase = power / (3 * volt) if dc else v
            if v > 0.0:
                row = alloc_a[ni]
                if row is None:
                    alloc_a[ni] = row = [0.0, 0.0, 0.0]
                    any_alloc = True
                for r in phases:
                    row[r] += per_phase
                alloc_w[ni] += power
            if len(phases) == 3:
                current_t: PhaseValues = (per_phase, per_phase, per_phase)
            else:
                current = [0.0, 0.0, 0.0]
                for r in phases:
                    current[r] = per_phase
                current_t = (current[0], current[1], current[2])
            smax = s_max_l[i]
            smin = s_min_l[i]
            src = s_max_src[i]
            if v <= 0.0 and smax < smin - _EPS:
                if src.startswith("node "):  # a node it has to itself has no room for the minimum
                    reason = Reason.NO_CAPACITY
                    binding = src[5:]
                    room = smax
                else:  # the car (or its draw) cannot take the minimum
                    reason = Reason.BELOW_MINIMUM
            elif v > 0.0 and v >= smax - _EPS:
                reason = Reason.AT_MAXIMUM
                binding = src[5:] if src.startswith("node ") else None
            else:
                reason = Reason.NO_CAPACITY if v <= 0.0 else Reason.NODE_LIMIT
                # The binding constraint: the fullest one; among (nearly) equally full ones the nearest the car.
                cons = s_cons[i]
                best = INF
                for c, coef in cons:
                    rr = (cap[c] - load[c]) / coef
                    if rr < best:
                        best = rr
                room = best
                which = -1
                for c, coef in reversed(cons):
                    if (cap[c] - load[c]) / coef <= best + 1e-9:
                        which = c
                        break
                if which >= 0:
                    binding = tnodes[c_node[which]].node.id
                    ph = c_phase[which]
                    binding_phase = "power" if ph < 0 else PHASE_NAMES[ph]
            # The value on the wire is rounded down (0.1 A / 1 W) so a charger never gets more than allocated.
            limit = float(math.floor(power + 1e-6)) if unit is watts_unit else math.floor(per_phase * 10 + 1e-6) / 10
            out[s.id] = SessionAllocation(
                s.id,
                s.connector_id,
                cp_id,
                s.supply,
                True,
                v,
                current_t,
                power,
                limit,
                unit,
                len(phases),
                smax,
                smin,
                reason,
                binding,
                binding_phase,
                room if room > 0.0 else 0.0,
                src,
                strat,
                rank_pos[i] + 1,
                s.priority,
                need_level.get(i),
                draw_capped[i],
                pco,
            )

        # Allocated load was put on the connectors; roll it up (children come after their parents).
        if any_alloc:
            for n in range(nn - 1, -1, -1):
                ca = alloc_a[n]
                if ca is None:
                    continue
                parent = tnodes[n].parent
                if parent >= 0:
                    pa = alloc_a[parent]
                    if pa is None:
                        alloc_a[parent] = pa = [0.0, 0.0, 0.0]
                    pa[0] += ca[0]
                    pa[1] += ca[1]
                    pa[2] += ca[2]
                    alloc_w[parent] += alloc_w[n]
        nodes_out: dict[str, NodeAllocation] = {}
        limit_a, limit_w, sub_a, sub_w, sources = (
            self.limit_a,
            self.limit_w,
            self.sub_unc_a,
            self.sub_unc_w,
            self.sources,
        )
        zero3 = _ZERO3
        for n in range(nn):
            node = tnodes[n].node
            la = limit_a[n]
            ua = sub_a[n]
            aa = alloc_a[n]
            lw = limit_w[n]
            uw = sub_w[n]
            nodes_out[node.id] = NodeAllocation(
                node.id,
                node.kind,
                la,
                lw,
                zero3 if aa is None else (aa[0], aa[1], aa[2]),
                alloc_w[n],
                ua if ua is zero3 else (ua[0], ua[1], ua[2]),
                uw,
                sources[n],
            )
            if ua[0] > la[0] + 1e-6 or ua[1] > la[1] + 1e-6 or ua[2] > la[2] + 1e-6 or uw > lw:
                self.warnings.append(
                    f"node {node.id!r}: uncontrolled load (non-EV load, chargers rejecting profiles) "
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
