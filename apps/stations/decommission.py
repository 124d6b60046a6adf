"""Taking locations, charge points and EVSEs out of service (writes of the stations domain, kept apart from the
OCPP command services in `services.py`).

A DELETE never removes what history points to (sessions, CDRs, invoices ... keep their location, charger and
EVSE): such an object is decommissioned instead, OCPI 2.2.1's `REMOVED` ("There is no way to entirely delete
Locations, EVSEs and Connectors as there are other modules like sessions that depend on them"). A decommissioned
object leaves the operational lists, the driver station search and smart charging, accepts no new session, and
stays readable by id, in history, exports and the admin (filterable). Decommissioning is one-way here.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict
from apps.stations.models import ChargePoint, Evse, Location
from apps.stations.services import stations_changed


@transaction.atomic
def location_decommission(*, location: Location, at: dt.datetime | None = None) -> Location:
    """The location and every charge point and EVSE at it (OCPI: a location without a valid EVSE is expired)."""
    at = at or timezone.now()
    location = Location.objects.select_for_update().get(pk=location.pk)
    if location.decommissioned_at is None:
        location.decommissioned_at = at
        location.save(update_fields=["decommissioned_at", "updated_at"])
    charge_points = ChargePoint.objects.filter(location=location, decommissioned_at__isnull=True)
    Evse.objects.filter(charge_point__in=charge_points, decommissioned_at__isnull=True).update(
        decommissioned_at=at, updated_at=at
    )
    charge_points.update(decommissioned_at=at, updated_at=at)
    stations_changed(tenant_id=location.tenant_id)
    return location


@transaction.atomic
def charge_point_decommission(*, charge_point: ChargePoint, at: dt.datetime | None = None) -> ChargePoint:
    """The charge point and its EVSEs. A session running on it may still end (StopTransaction is accepted)."""
    at = at or timezone.now()
    charge_point = ChargePoint.objects.select_for_update().get(pk=charge_point.pk)
    if charge_point.decommissioned_at is None:
        charge_point.decommissioned_at = at
        charge_point.save(update_fields=["decommissioned_at", "updated_at"])
    Evse.objects.filter(charge_point=charge_point, decommissioned_at__isnull=True).update(
        decommissioned_at=at, updated_at=at
    )
    stations_changed(tenant_id=charge_point.tenant_id)
    return charge_point


@transaction.atomic
def evse_decommission(*, evse: Evse, at: dt.datetime | None = None) -> Evse:
    evse = Evse.objects.select_for_update().get(pk=evse.pk)
    if evse.decommissioned_at is None:
        evse.decommissioned_at = at or timezone.now()
        evse.save(update_fields=["decommissioned_at", "updated_at"])
    stations_changed(tenant_id=evse.tenant_id)
    return evse


def decommissioned_reason(*, charge_point: ChargePoint, connector_id: int | None = None) -> str:
    """Why nothing may start on this charger (or connector), or "" when it is in service."""
    if charge_point.decommissioned_at is not None:
        return f"Charge point {charge_point.identity} is decommissioned."
    location = charge_point.location
    if location is not None and location.decommissioned_at is not None:
        return f"Location {location.name} is decommissioned."
    if connector_id:
        evse = Evse.objects.filter(charge_point=charge_point, connector_id=connector_id).first()
        if evse is not None and evse.decommissioned_at is not None:
            return f"EVSE {evse.evse_uid} is decommissioned."
    return ""


def ensure_in_service(*, charge_point: ChargePoint, connector_id: int | None = None) -> None:
    """409 `decommissioned` when a session or reservation would start on a decommissioned charger or EVSE."""
    reason = decommissioned_reason(charge_point=charge_point, connector_id=connector_id)
    if reason:
        raise Conflict(reason + " No session can start on it.", code="decommissioned")
