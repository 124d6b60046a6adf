"""Writes of the energy app: grid signals, building load, node/TOU edits, and the control loop.

`site_recompute` builds the optimizer input from the database (`selectors.site_input`), runs the optimizer,
records a `SiteRecompute` with one `Allocation` per session, and works out which SetChargingProfile
commands are needed: a TxProfile per controlled session whose limit changed, plus, once per charger, a
TxDefaultProfile (6 A per phase, for sessions that start while we cannot reach the charger) and, where the
charger node has a rating, a ChargePointMaxProfile. The commands are sent after commit (`profiles_send`),
outside any transaction, by whoever called it (the Celery task): never from an OCPP socket handler.

A charger answering Rejected (or a CallError) is marked `rejects_profiles`: the next recompute reserves it at
its full rating, and an alert of kind `profile_rejected` is raised.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from apps.core.errors import ApplicationError
from apps.energy import optimizer as opt
from apps.energy import selectors
from apps.energy.models import (
    Allocation,
    BuildingLoadReading,
    ChargePointProfileState,
    GridNode,
    GridSignal,
    NodeKind,
    SessionPowerCap,
    SiteRecompute,
    TimeOfUseLimit,
)
from apps.stations import services as station_services
from apps.stations.models import ChargePoint
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

# our profile ids (the sessions app uses 900_000+ for its 0 A hold, at stack level 9 above ours)
TX_PROFILE_ID = 800_000  # + connector id
TX_DEFAULT_PROFILE_ID = 800_500
CP_MAX_PROFILE_ID = 800_600
TX_STACK_LEVEL = 1
DEFAULT_STACK_LEVEL = 0
FALLBACK_CURRENT_A = Decimal("6.0")
COMMAND_TIMEOUT = 10.0


# --------------------------------------------------------------------------- limits and readings


def _same_tenant(tenant: Tenant, *rows: Any) -> None:
    for row in rows:
        if row is not None and row.tenant_id != tenant.pk:
            raise ApplicationError("Not found.", code="not_found", status_code=404)


@transaction.atomic
def grid_signal_create(
    *,
    tenant: Tenant,
    node: GridNode,
    valid_from: dt.datetime,
    valid_until: dt.datetime,
    max_power_w: int | None = None,
    max_current_a: int | None = None,
    source: str = "",
    reference: str = "",
    created_by: Any = None,
    api_key: Any = None,
) -> GridSignal:
    """Store a curtailment for a node (a new row every time: the rows are the audit trail) and recompute."""
    _same_tenant(tenant, node)
    if valid_until <= valid_from:
        raise ApplicationError(
            "valid_until must be after valid_from.", code="invalid", fields={"valid_until": ["Before valid_from."]}
        )
    if max_power_w is None and max_current_a is None:
        raise ApplicationError(
            "Give max_power_w and/or max_current_a.", code="invalid", fields={"max_power_w": ["Required."]}
        )
    signal = GridSignal.objects.create(
        tenant=tenant,
        node=node,
        valid_from=valid_from,
        valid_until=valid_until,
        max_power_w=max_power_w,
        max_current_a=max_current_a,
        source=source,
        reference=reference,
        created_by=created_by if getattr(created_by, "pk", None) else None,
        api_key=api_key if getattr(api_key, "pk", None) else None,
    )
    recompute_request(site_id=selectors.site_root(node).pk, trigger="grid_signal")
    return signal


@transaction.atomic
def building_load_record(
    *,
    tenant: Tenant,
    node: GridNode,
    at: dt.datetime,
    power_w: int | None = None,
    current_l1_a: Decimal | None = None,
    current_l2_a: Decimal | None = None,
    current_l3_a: Decimal | None = None,
) -> BuildingLoadReading:
    _same_tenant(tenant, node)
    currents = (current_l1_a, current_l2_a, current_l3_a)
    if power_w is None and any(c is None for c in currents):
        raise ApplicationError(
            "Give power_w or all three phase currents.", code="invalid", fields={"power_w": ["Required."]}
        )
    return BuildingLoadReading.objects.create(
        tenant=tenant,
        node=node,
        at=at,
        power_w=power_w,
        current_l1_a=current_l1_a,
        current_l2_a=current_l2_a,
        current_l3_a=current_l3_a,
    )


def _check_node(node: GridNode) -> None:
    if node.parent is not None:
        if node.parent.tenant_id != node.tenant_id or node.parent.location_id != node.location_id:
            raise ApplicationError(
                "The parent must be a node of the same site.", code="invalid", fields={"parent": ["Other site."]}
            )
        ancestor: GridNode | None = node.parent
        while ancestor is not None:
            if node.pk is not None and ancestor.pk == node.pk:
                raise ApplicationError(
                    "A node cannot hang below itself.", code="invalid", fields={"parent": ["Cycle."]}
                )
            if ancestor.kind == NodeKind.CHARGE_POINT:
                raise ApplicationError(
                    "A charge point node is a leaf.", code="invalid", fields={"parent": ["Charge point."]}
                )
            ancestor = ancestor.parent
    if (node.kind == NodeKind.CHARGE_POINT) != (node.charge_point_id is not None):
        raise ApplicationError(
            "A charge point node (and only one) names its charge point.",
            code="invalid",
            fields={"charge_point": ["Required for kind charge_point only."]},
        )
    if node.charge_point is not None and (
        node.charge_point.tenant_id != node.tenant_id or node.charge_point.location_id != node.location_id
    ):
        raise ApplicationError(
            "The charge point must be at the node's location.", code="invalid", fields={"charge_point": ["Other site."]}
        )
    if node.location_id is not None and node.location.tenant_id != node.tenant_id:
        raise ApplicationError("Not found.", code="not_found", status_code=404)


def _after_limit_change(node: GridNode, trigger: str) -> None:
    recompute_request(site_id=selectors.site_root(node).pk, trigger=trigger)


@transaction.atomic
def grid_node_save(*, node: GridNode) -> GridNode:
    """Validate the node against its tree and save it (API and admin); the site is recomputed."""
    _check_node(node)
    node.full_clean()
    node.save()
    _after_limit_change(node, "node_changed")
    return node


def grid_node_create(*, tenant: Tenant, **fields: Any) -> GridNode:
    return grid_node_save(node=GridNode(tenant=tenant, **fields))


def grid_node_update(*, node: GridNode, **fields: Any) -> GridNode:
    for key, value in fields.items():
        setattr(node, key, value)
    return grid_node_save(node=node)


@transaction.atomic
def tou_limit_create(*, tenant: Tenant, **fields: Any) -> TimeOfUseLimit:
    window = TimeOfUseLimit(tenant=tenant, **fields)
    _same_tenant(tenant, window.node)
    window.weekdays = sorted(set(window.weekdays))
    window.full_clean()
    window.save()
    _after_limit_change(window.node, "tou_changed")
    return window


@transaction.atomic
def tou_limit_update(*, window: TimeOfUseLimit, **fields: Any) -> TimeOfUseLimit:
    for key, value in fields.items():
        setattr(window, key, value)
    _same_tenant(window.tenant, window.node)
    window.weekdays = sorted(set(window.weekdays))
    window.full_clean()
    window.save()
    _after_limit_change(window.node, "tou_changed")
    return window


@transaction.atomic
def tou_limit_save(*, window: TimeOfUseLimit) -> TimeOfUseLimit:
    """Save a window edited in the admin (already validated by its form); the site is recomputed."""
    _same_tenant(window.tenant, window.node)
    window.weekdays = sorted(set(window.weekdays))
    window.save()
    _after_limit_change(window.node, "tou_changed")
    return window


@transaction.atomic
def tou_limit_delete(*, window: TimeOfUseLimit) -> None:
    node = window.node
    window.delete()
    _after_limit_change(node, "tou_changed")


# --------------------------------------------------------------------------- the control loop


def recompute_request(*, site_id: int, trigger: str) -> None:
    """Ask for a recompute of a site soon (debounced per site), after the current transaction commits."""

    def enqueue() -> None:
        from apps.energy.tasks import recompute_debounced

        recompute_debounced(site_id=site_id, trigger=trigger)

    transaction.on_commit(enqueue, robust=True)


@dataclass(frozen=True)
class ProfileOrder:
    """One SetChargingProfile to send."""

    charge_point_id: int
    connector_id: int
    purpose: str
    profile_id: int
    stack_level: int
    limit: Decimal
    unit: str
    transaction_id: int | None = None
    number_phases: int | None = None

    def payload(self) -> dict[str, Any]:
        period: dict[str, Any] = {"startPeriod": 0, "limit": float(self.limit)}
        if self.number_phases:
            period["numberPhases"] = self.number_phases
        profile: dict[str, Any] = {
            "chargingProfileId": self.profile_id,
            "stackLevel": self.stack_level,
            "chargingProfilePurpose": self.purpose,
            "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": self.unit, "chargingSchedulePeriod": [period]},
        }
        if self.transaction_id is not None:
            profile["transactionId"] = self.transaction_id
        return {"connectorId": self.connector_id, "csChargingProfiles": profile}


@dataclass
class RecomputeOutcome:
    recompute: SiteRecompute
    result: opt.AllocationResult
    orders: list[ProfileOrder]


def _dec(value: float, places: str = "0.1") -> Decimal:
    return Decimal(str(value)).quantize(Decimal(places), rounding=ROUND_DOWN)


def _unchanged(state: ChargePointProfileState | None, order: ProfileOrder) -> bool:
    return (
        state is not None
        and state.status == ChargePointProfileState.Status.ACCEPTED
        and state.transaction_id == order.transaction_id
        and state.limit == order.limit
        and state.unit == order.unit
    )


def _orders(inp: selectors.SiteInput, result: opt.AllocationResult) -> list[ProfileOrder]:
    orders: list[ProfileOrder] = []
    for alloc in result.sessions.values():
        pk = int(alloc.session_id)
        if not alloc.controlled or pk in inp.held:
            continue
        row = inp.session_rows[pk]
        order = ProfileOrder(
            charge_point_id=row.charge_point_id,
            connector_id=row.connector_id,
            purpose=selectors.TX_PROFILE,
            profile_id=TX_PROFILE_ID + row.connector_id,
            stack_level=TX_STACK_LEVEL,
            limit=_dec(alloc.limit),
            unit=alloc.unit.value,
            transaction_id=pk,
            number_phases=alloc.number_phases if alloc.supply is opt.Supply.AC else None,
        )
        if not _unchanged(inp.states.get((row.charge_point_id, row.connector_id, order.purpose)), order):
            orders.append(order)
    for node in inp.nodes.values():
        cp = node.charge_point
        if cp is None or node.rejects_profiles or not cp.online:
            continue
        watts = cp.charging_rate_unit == ChargePoint.RateUnit.WATT
        fallback = FALLBACK_CURRENT_A * node.phases * node.voltage_v if watts else FALLBACK_CURRENT_A
        wanted = [
            ProfileOrder(
                charge_point_id=cp.pk,
                connector_id=0,
                purpose="TxDefaultProfile",
                profile_id=TX_DEFAULT_PROFILE_ID,
                stack_level=DEFAULT_STACK_LEVEL,
                limit=_dec(float(fallback)),
                unit="W" if watts else "A",
            )
        ]
        rating = (node.max_power_w or cp.max_power_w) if watts else node.max_current_a
        if rating:
            wanted.append(
                ProfileOrder(
                    charge_point_id=cp.pk,
                    connector_id=0,
                    purpose="ChargePointMaxProfile",
                    profile_id=CP_MAX_PROFILE_ID,
                    stack_level=DEFAULT_STACK_LEVEL,
                    limit=_dec(float(rating)),
                    unit="W" if watts else "A",
                )
            )
        for order in wanted:
            if not _unchanged(inp.states.get((cp.pk, 0, order.purpose)), order):
                orders.append(order)
    return orders


def _record(inp: selectors.SiteInput, result: opt.AllocationResult, trigger: str, took_ms: float) -> SiteRecompute:
    root_alloc = result.nodes.get(selectors.node_id(inp.root.pk))
    limit_w = None
    if root_alloc is not None and root_alloc.limit_w != float("inf"):
        limit_w = int(root_alloc.limit_w)
    elif root_alloc is not None and max(root_alloc.limit_a) != float("inf"):
        limit_w = int(sum(root_alloc.limit_a) * inp.root.voltage_v)
    measured = sum(s.last_power_w or 0 for s in inp.session_rows.values()) + inp.building_load_w
    recompute = SiteRecompute.objects.create(
        tenant_id=inp.root.tenant_id,
        site=inp.root,
        at=inp.at,
        trigger=trigger,
        strategy=result.strategy.value,
        limit_w=limit_w,
        allocated_w=int(root_alloc.allocated_w) if root_alloc is not None else 0,
        uncontrolled_w=int(root_alloc.uncontrolled_w) if root_alloc is not None else 0,
        measured_w=int(measured),
        sessions=len(result.sessions),
        duration_ms=round(took_ms, 3),
        warnings=list(result.warnings),
    )
    # the stored sentence is a record: in the site's language, whoever (or whichever worker) ran the recompute
    with translation.override(settings.LANGUAGE_CODE):
        held_text = gettext("0: held at 0 A by its contract limit (the sessions app's profile applies)")
        explanations = {sid: a.explanation for sid, a in result.sessions.items()}
    Allocation.objects.bulk_create(
        [
            Allocation(
                tenant_id=inp.root.tenant_id,
                recompute=recompute,
                session_id=int(a.session_id),
                charge_point_id=inp.session_rows[int(a.session_id)].charge_point_id,
                connector_id=inp.session_rows[int(a.session_id)].connector_id,
                at=inp.at,
                controlled=a.controlled,
                limit=_dec(a.limit),
                unit=a.unit.value,
                power_w=int(a.power_w),
                current_l1_a=_dec(a.current_a[0], "0.01"),
                current_l2_a=_dec(a.current_a[1], "0.01"),
                current_l3_a=_dec(a.current_a[2], "0.01"),
                reason="held_at_zero" if int(a.session_id) in inp.held else a.reason.value,
                explanation=held_text if int(a.session_id) in inp.held else explanations[sid],
            )
            for sid, a in result.sessions.items()
        ]
    )
    return recompute


def site_recompute(
    *, site_id: int, at: dt.datetime | None = None, trigger: str = "manual", send: bool = True
) -> RecomputeOutcome:
    """Optimize one site now, record the allocations, and (after commit) send the profiles that changed."""
    at = at or timezone.now()
    with transaction.atomic():
        inp = selectors.site_input(site_id=site_id, at=at)
        started = time.perf_counter()
        result = opt.optimize(inp.site, inp.sessions, at=at, config=inp.config)
        took_ms = (time.perf_counter() - started) * 1000
        recompute = _record(inp, result, trigger, took_ms)
        orders = _orders(inp, result)
        if send and orders:
            transaction.on_commit(lambda: profiles_send(orders=orders), robust=True)
    return RecomputeOutcome(recompute=recompute, result=result, orders=orders)


def next_boundary(*, site_id: int, after: dt.datetime) -> dt.datetime | None:
    """When a time-of-use window or grid signal of the site next starts or ends."""
    from apps.energy import limits

    root = GridNode.objects.select_related("location").get(pk=site_id)
    nodes = GridNode.objects.filter(location_id=root.location_id)
    windows = [selectors._window(w) for w in TimeOfUseLimit.objects.filter(node__in=nodes)]
    signals = [
        selectors._signal(s) for s in GridSignal.objects.filter(node__in=nodes, valid_until__gt=after).order_by("pk")
    ]
    return limits.next_limit_change(
        windows=windows, signals=signals, after=after, tz=root.location.timezone or "UTC", horizon=dt.timedelta(days=1)
    )


def profiles_send(*, orders: list[ProfileOrder], timeout: float = COMMAND_TIMEOUT) -> list[ChargePointProfileState]:
    """Send each order (outside any transaction) and remember what the charger answered."""
    charge_points = ChargePoint.objects.in_bulk({o.charge_point_id for o in orders})
    states = []
    refused: set[int] = set()
    for order in orders:
        cp = charge_points.get(order.charge_point_id)
        if cp is None or cp.pk in refused:
            continue  # a charger that just refused one profile gets no more
        try:
            command = station_services.send_command(
                charge_point=cp, action="SetChargingProfile", payload=order.payload(), timeout=timeout, source="energy"
            )
            status, command_id, error = command.status, command.pk, command.error
        except station_services.ChargePointOffline:
            status, command_id, error = ChargePointProfileState.Status.OFFLINE, None, "offline"
        except station_services.InvalidCommand as invalid:  # the charger's facts forbid it: nothing was sent
            status, command_id, error = ChargePointProfileState.Status.ERROR, None, invalid.message
        state = profile_state_record(order=order, status=status, command_id=command_id, error=error)
        if state.rejected:
            refused.add(cp.pk)
        states.append(state)
    return states


@transaction.atomic
def profile_state_record(
    *, order: ProfileOrder, status: str, command_id: int | None, error: str = ""
) -> ChargePointProfileState:
    if status not in ChargePointProfileState.Status.values:
        status = ChargePointProfileState.Status.ERROR
    rejected = status in (ChargePointProfileState.Status.REJECTED, ChargePointProfileState.Status.ERROR)
    state, _ = ChargePointProfileState.objects.update_or_create(
        charge_point_id=order.charge_point_id,
        connector_id=order.connector_id,
        purpose=order.purpose,
        defaults={
            "profile_id": order.profile_id,
            "transaction_id": order.transaction_id,
            "limit": order.limit,
            "unit": order.unit,
            "status": status,
            "rejected": rejected,
            "command_id": command_id,
            "sent_at": timezone.now(),
        },
    )
    if rejected:
        charge_point_exclude(charge_point_id=order.charge_point_id, order=order, status=status, error=error)
    return state


def charge_point_exclude(*, charge_point_id: int, order: ProfileOrder, status: str, error: str = "") -> None:
    """A charger that refuses profiles: reserved at its full rating from the next recompute on, and alerted."""
    node = GridNode.objects.select_related("charge_point").filter(charge_point_id=charge_point_id).first()
    if node is None:
        return
    first_time = GridNode.objects.filter(pk=node.pk, rejects_profiles=False).update(rejects_profiles=True) > 0
    _alert_profile_rejected(node=node, order=order, status=status, error=error)
    if first_time:
        recompute_request(site_id=selectors.site_root(node).pk, trigger="profile_rejected")


def _alert_profile_rejected(*, node: GridNode, order: ProfileOrder, status: str, error: str) -> None:
    from apps.analytics import services as analytics_services  # same layer; alerts are analytics' job
    from apps.analytics import texts as alert_texts

    cp = node.charge_point
    assert cp is not None
    analytics_services.alert_raise(
        tenant_id=node.tenant_id,
        kind="profile_rejected",
        subject=f"cp:{cp.pk}/SetChargingProfile",  # analytics' subject for a failed profile: one alert, not two
        message=alert_texts.PROFILE_NOT_CONTROLLED.fill(
            charger=cp.identity, status=status, purpose=order.purpose, limit=order.limit, unit=order.unit
        ),
        charge_point_id=cp.pk,
        details={"purpose": order.purpose, "limit": str(order.limit), "unit": order.unit, "error": error[:200]},
    )


@transaction.atomic
def charge_point_include(*, node: GridNode) -> GridNode:
    """An operator says the charger takes profiles again (e.g. after a firmware update)."""
    GridNode.objects.filter(pk=node.pk).update(rejects_profiles=False)
    ChargePointProfileState.objects.filter(charge_point_id=node.charge_point_id).delete()
    node.rejects_profiles = False
    _after_limit_change(node, "node_changed")
    return node


# --------------------------------------------------------------------------- caps from outside (roaming partners)


@transaction.atomic
def session_power_cap_set(
    *,
    session_id: int,
    source: str,
    unit: str,
    periods: list[tuple[int, float]],
    start_at: dt.datetime | None = None,
    duration_s: int | None = None,
    profile: dict[str, Any] | None = None,
) -> SessionPowerCap:
    """Cap one session by an outside charging profile (a roaming partner's): the control loop never gives it more,
    the site's limits apply on top. The site is not recomputed here: the caller does (`site_recompute`), or the
    next trigger does."""
    if unit not in ("W", "A"):
        raise ApplicationError(f"unit must be W or A, not {unit!r}.")
    cap, _ = SessionPowerCap.objects.update_or_create(
        session_id=session_id,
        defaults={
            "source": source[:40],
            "unit": unit,
            "periods": [[int(start), float(limit)] for start, limit in periods],
            "start_at": start_at,
            "duration_s": duration_s,
            "profile": profile or {},
        },
    )
    return cap


@transaction.atomic
def session_power_cap_clear(*, session_id: int) -> bool:
    """Remove a session's outside cap; True when there was one."""
    deleted, _ = SessionPowerCap.objects.filter(session_id=session_id).delete()
    return deleted > 0
