"""Reads of the energy app: API/admin querysets and the optimizer input of a site, built in a fixed number of queries.

Ids in the optimizer input: grid nodes are ``n<pk>``, connectors ``c<charge point pk>:<connector id>``,
sessions the session pk as text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch, QuerySet

from apps.energy import limits
from apps.energy import optimizer as opt
from apps.energy.models import (
    BuildingLoadReading,
    ChargePointProfileState,
    GridNode,
    GridSignal,
    NodeKind,
    SiteRecompute,
    TimeOfUseLimit,
)
from apps.sessions.models import ChargingSession, SessionStatus
from apps.stations.models import ChargePoint, Connector

# sessions the optimizer shares power among (pending ones have not started drawing; finishing ones are stopping)
CONTROLLED_STATUSES = (SessionStatus.ACTIVE, SessionStatus.SUSPENDED)
BUILDING_LOAD_FRESH = dt.timedelta(minutes=15)  # an older reading is ignored
TX_PROFILE = "TxProfile"


def grid_node_list() -> QuerySet[GridNode]:
    return GridNode.objects.select_related("tenant", "location", "parent", "charge_point").order_by("pk")


def tou_limit_list() -> QuerySet[TimeOfUseLimit]:
    return TimeOfUseLimit.objects.select_related("tenant", "node").order_by("pk")


def grid_signal_list() -> QuerySet[GridSignal]:
    return GridSignal.objects.select_related("tenant", "node").order_by("-pk")


def building_load_list() -> QuerySet[BuildingLoadReading]:
    return BuildingLoadReading.objects.select_related("tenant", "node").order_by("-at", "-pk")


def node_id(pk: int) -> str:
    return f"n{pk}"


def connector_node_id(charge_point_id: int, connector_id: int) -> str:
    return f"c{charge_point_id}:{connector_id}"


def site_root(node: GridNode) -> GridNode:
    """The root of the tree `node` is in (a few queries; the tree is shallow)."""
    while node.parent_id is not None:
        node = GridNode.objects.get(pk=node.parent_id)
    return node


def site_root_id_for_charge_point(*, charge_point_id: int) -> int | None:
    node = GridNode.objects.filter(charge_point_id=charge_point_id).first()
    return site_root(node).pk if node is not None else None


def site_root_ids() -> list[int]:
    """Roots of every tree that has at least one charge point in service (beat)."""
    return list(
        GridNode.objects.filter(
            parent__isnull=True,
            location__decommissioned_at__isnull=True,
            location__in=GridNode.objects.filter(
                kind=NodeKind.CHARGE_POINT, charge_point__decommissioned_at__isnull=True
            ).values("location"),
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


@dataclass
class SiteInput:
    """Everything one recompute needs, with the rows it came from."""

    root: GridNode
    at: dt.datetime
    site: opt.Site
    sessions: list[opt.Session]
    nodes: dict[int, GridNode]
    charge_points: dict[int, ChargePoint]  # by pk, chargers in the tree
    session_rows: dict[int, ChargingSession]
    held: set[int]  # sessions held at 0 A by their contract limit (sessions app owns their profile)
    states: dict[tuple[int, int, str], ChargePointProfileState]
    building_load_w: float
    windows: list[limits.TimeOfUseWindow] = field(default_factory=list)
    signals: list[limits.GridSignal] = field(default_factory=list)
    config: opt.OptimizerConfig = field(default_factory=opt.OptimizerConfig)


def _window(row: TimeOfUseLimit) -> limits.TimeOfUseWindow:
    return limits.TimeOfUseWindow(
        weekdays=frozenset(row.weekdays),
        start=row.start,
        end=row.end,
        percent=float(row.percent) if row.percent is not None else None,
        max_power_w=float(row.max_power_w) if row.max_power_w is not None else None,
        max_current_a=float(row.max_current_a) if row.max_current_a is not None else None,
        label=row.label,
    )


def _signal(row: GridSignal) -> limits.GridSignal:
    return limits.GridSignal(
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        max_power_w=float(row.max_power_w) if row.max_power_w is not None else None,
        max_current_a=float(row.max_current_a) if row.max_current_a is not None else None,
        issued_at=row.created_at,
        source=row.source or f"signal {row.pk}",
    )


def _descendants(root: GridNode, rows: Iterable[GridNode]) -> dict[int, GridNode]:
    children: dict[int | None, list[GridNode]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)
    out: dict[int, GridNode] = {}
    stack = [r for r in children.get(root.parent_id, []) if r.pk == root.pk] or [root]  # the prefetched row
    while stack:
        node = stack.pop()
        if node.pk in out:
            continue
        out[node.pk] = node
        stack.extend(children.get(node.pk, []))
    return out


def _capped(
    s: ChargingSession, *, at: dt.datetime, dc: bool, phases: int, voltage: float
) -> Callable[..., opt.Session]:
    """An opt.Session maker that applies the session's power cap (its roaming partner's charging profile, energy
    SessionPowerCap) on top of the car's own maxima: the optimizer never gives it more, and the site's limits
    still apply (the minimum wins)."""
    if not hasattr(s, "power_cap"):  # select_related: no query either way
        return opt.Session
    cap_row = s.power_cap
    limit = cap_row.limit_at(at, s.started_at)
    if limit is None:
        return opt.Session

    def make(**fields: Any) -> opt.Session:
        if cap_row.unit == "A" and not dc:
            current = fields.get("vehicle_max_current_a")
            fields["vehicle_max_current_a"] = min(limit, current) if current is not None else limit
        else:
            watts = limit if cap_row.unit == "W" else limit * voltage * (phases if not dc else 1)
            power = fields.get("vehicle_max_power_w")
            fields["vehicle_max_power_w"] = min(watts, power) if power is not None else watts
        return opt.Session(**fields)

    return make


def site_input(*, site_id: int, at: dt.datetime) -> SiteInput:
    """The optimizer input of the tree rooted at `site_id` at `at` (7 queries, whatever the size)."""
    root = GridNode.objects.select_related("location").get(pk=site_id)
    tz = root.location.timezone or "UTC"
    rows = list(
        GridNode.objects.filter(location_id=root.location_id)
        .select_related("charge_point")
        .prefetch_related(
            Prefetch("tou_limits", queryset=TimeOfUseLimit.objects.order_by("pk")),
            Prefetch(
                "signals",
                queryset=GridSignal.objects.filter(valid_from__lte=at, valid_until__gt=at).order_by("pk"),
            ),
        )
    )
    # decommissioned chargers leave smart charging: their leaves drop out of the tree
    nodes = {
        pk: node
        for pk, node in _descendants(root, rows).items()
        if node.charge_point is None or node.charge_point.decommissioned_at is None
    }
    loads: dict[int, BuildingLoadReading] = {
        r.node_id: r
        for r in BuildingLoadReading.objects.filter(
            node_id__in=list(nodes), at__lte=at, at__gt=at - BUILDING_LOAD_FRESH
        )
        .order_by("node_id", "-at", "-pk")
        .distinct("node_id")
    }
    charge_points = {n.charge_point.pk: n.charge_point for n in nodes.values() if n.charge_point is not None}
    connectors: dict[tuple[int, int], Connector] = {}
    for connector in (
        Connector.objects.filter(evse__charge_point_id__in=list(charge_points), evse__decommissioned_at__isnull=True)
        .select_related("evse")
        .order_by("evse__charge_point_id", "evse__connector_id", "pk")
    ):
        connectors.setdefault((connector.evse.charge_point_id, connector.evse.connector_id), connector)
    sessions_rows = list(
        ChargingSession.objects.filter(charge_point_id__in=list(charge_points), status__in=CONTROLLED_STATUSES)
        # a session noted as ended (its charger rebooted, or started anew on the connector) waits out a grace
        # period before it closes: the charger no longer has it, so it gets no share and no TxProfile (a charger
        # refuses a profile for a transaction it does not have, and was then taken for one that refuses profiles)
        .filter(end_evidence="")
        .select_related("contract", "vehicle", "power_cap")
        .order_by("pk")
    )
    states = {
        (s.charge_point_id, s.connector_id, s.purpose): s
        for s in ChargePointProfileState.objects.filter(charge_point_id__in=list(charge_points))
    }

    windows: list[limits.TimeOfUseWindow] = []
    signals: list[limits.GridSignal] = []
    opt_nodes: list[opt.Node] = []
    node_of_cp: dict[int, GridNode] = {}
    building_load_w = 0.0
    for row in nodes.values():
        node_windows = tuple(_window(w) for w in row.tou_limits.all())
        node_signals = tuple(_signal(s) for s in row.signals.all())
        windows.extend(node_windows)
        signals.extend(node_signals)
        load = loads.get(row.pk)
        other_w = float(load.power_w) if load is not None and load.power_w is not None else None
        other_a = None
        if load is not None and load.current_l1_a is not None:
            other_a = (float(load.current_l1_a), float(load.current_l2_a or 0), float(load.current_l3_a or 0))
        if load is not None:
            building_load_w += other_w if other_w is not None else sum(other_a or ()) * row.voltage_v
        max_power = row.max_power_w
        rate_unit = opt.RateUnit.AMPS
        if row.charge_point is not None:
            node_of_cp[row.charge_point.pk] = row
            max_power = max_power or row.charge_point.max_power_w
            rate_unit = opt.RateUnit(row.charge_point.charging_rate_unit)
        opt_nodes.append(
            opt.Node(
                id=node_id(row.pk),
                kind=opt.NodeKind.CHARGE_POINT
                if row.kind == NodeKind.CHARGE_POINT
                else opt.NodeKind.DISTRIBUTION
                if row.kind == NodeKind.SUB_DISTRIBUTION
                else opt.NodeKind(row.kind),
                parent_id=node_id(row.parent_id) if row.parent_id is not None and row.pk != root.pk else None,
                max_power_w=float(max_power) if max_power else None,
                max_current_a=float(row.max_current_a) if row.max_current_a else None,
                phases=row.phases,
                voltage_v=float(row.voltage_v),
                safety_margin_pct=float(row.safety_margin_pct),
                rotation=limits.rotation_from_ocpp(row.phase_rotation),
                windows=node_windows,
                signals=node_signals,
                other_load_w=other_w,
                other_load_a=other_a,
                rejects_profiles=row.rejects_profiles,
                rate_unit=rate_unit,
            )
        )

    # connectors: from the stations' EVSEs, plus any connector a session runs on
    wanted = set(connectors) | {(s.charge_point_id, s.connector_id) for s in sessions_rows}
    connector_phases: dict[tuple[int, int], int] = {}
    for cp_id, connector_id in sorted(wanted):
        cp_node = node_of_cp.get(cp_id)
        if cp_node is None:
            continue
        c = connectors.get((cp_id, connector_id))
        dc = c is not None and c.power_type == Connector.PowerType.DC
        phases = 1 if c is not None and c.power_type == Connector.PowerType.AC_1_PHASE else min(cp_node.phases, 3)
        connector_phases[(cp_id, connector_id)] = phases
        opt_nodes.append(
            opt.Node(
                id=connector_node_id(cp_id, connector_id),
                kind=opt.NodeKind.CONNECTOR,
                parent_id=node_id(cp_node.pk),
                max_current_a=float(c.max_amperage) if c is not None and not dc and c.max_amperage else None,
                max_power_w=float(c.max_electric_power) if c is not None and dc and c.max_electric_power else None,
                phases=3 if dc else phases,
            )
        )

    sessions: list[opt.Session] = []
    held: set[int] = set()
    session_rows: dict[int, ChargingSession] = {}
    for s in sessions_rows:
        key = (s.charge_point_id, s.connector_id)
        if key not in connector_phases:
            continue
        c = connectors.get(key)
        dc = c is not None and c.power_type == Connector.PowerType.DC
        vehicle = s.vehicle
        is_held = s.limit_action == "zero_current" and s.limit_reached_at is not None
        if is_held:
            held.add(s.pk)
        phases = min(vehicle.ac_phases if vehicle is not None else 3, connector_phases[key])
        voltage = float(node_of_cp[s.charge_point_id].voltage_v)
        state = states.get((s.charge_point_id, s.connector_id, TX_PROFILE))
        previous_a = previous_w = None
        if (
            state is not None
            and state.transaction_id == s.pk
            and state.status == ChargePointProfileState.Status.ACCEPTED
        ):
            if state.unit == "A":
                previous_a = float(state.limit)
                previous_w = float(state.limit) * 3 * voltage
            else:
                previous_w = float(state.limit)
                previous_a = float(state.limit) / (phases * voltage)
        delivered = float((s.last_meter_wh or s.meter_start_wh) - s.meter_start_wh)
        session_rows[s.pk] = s
        capped = _capped(s, at=at, dc=dc, phases=phases, voltage=voltage)
        sessions.append(
            capped(
                id=str(s.pk),
                connector_id=connector_node_id(*key),
                supply=opt.Supply.DC if dc else opt.Supply.AC,
                vehicle_phases=vehicle.ac_phases if vehicle is not None and not dc else None,
                vehicle_max_current_a=0.0
                if is_held
                else float(vehicle.ac_max_current_a)
                if vehicle is not None and not dc
                else None,
                vehicle_max_power_w=0.0
                if is_held
                else float(vehicle.dc_max_power_w)
                if vehicle is not None and dc and vehicle.dc_max_power_w
                else float(s.max_power_w)
                if s.max_power_w
                else None,
                priority=s.contract.priority if s.contract is not None else 0,
                # the driver's preferences; where absent (or the given departure has passed) the optimizer
                # defaults from the vehicle's battery and the site's dwell
                departure=s.departure_at if s.departure_at is not None and s.departure_at > at else None,
                energy_needed_wh=max(float(s.energy_need_wh) - max(delivered, 0.0), 0.0)
                if s.energy_need_wh is not None
                else None,
                battery_capacity_wh=float(vehicle.battery_kwh) * 1000 if vehicle is not None else None,
                energy_delivered_wh=max(delivered, 0.0),
                started_at=s.started_at,
                measured_current_a=(s.last_power_w / (phases * voltage))
                if s.last_power_w is not None and not dc
                else None,
                measured_power_w=float(s.last_power_w) if s.last_power_w is not None and dc else None,
                previous_limit_a=None if dc else previous_a,
                previous_limit_w=previous_w if dc else None,
            )
        )
    site = opt.Site(nodes=tuple(opt_nodes), timezone=tz, strategy=opt.Strategy(root.strategy))
    return SiteInput(
        root=root,
        at=at,
        site=site,
        sessions=sessions,
        nodes=nodes,
        charge_points=charge_points,
        session_rows=session_rows,
        held=held,
        states=states,
        building_load_w=building_load_w,
        windows=windows,
        signals=signals,
        config=site_config(root),
    )


def site_config(root: GridNode) -> opt.OptimizerConfig:
    """The optimizer settings of a site (its root node): the default dwell of a car without a departure time."""
    if root.default_dwell_minutes:
        return opt.OptimizerConfig(default_dwell=dt.timedelta(minutes=root.default_dwell_minutes))
    return opt.OptimizerConfig()


def site_history(*, site_id: int, since: dt.datetime) -> QuerySet[SiteRecompute]:
    return SiteRecompute.objects.filter(site_id=site_id, at__gte=since).order_by("at")
