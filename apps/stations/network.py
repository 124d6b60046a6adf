"""Writes of the network's description: locations, the place of charge points, EVSEs and connectors. Every way in
(the API's viewsets, the admin's forms and inlines, the decommission services, the OCPP status of an unknown
connector) comes through here or calls `location_changed`/`evse_changed`, so that each change publishes its event
(`apps.core.events.LocationChanged`/`EvseChanged`) in the same transaction: the features above that show the
network elsewhere (the OCPI pushes of `apps.roaming`) follow every edit without this app knowing them.

Status changes reported by chargers are not here: they are `ConnectorStatusChanged` (services.status_record)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from apps.core import cache, events
from apps.stations.models import ChargePoint, Connector, Evse, Location
from apps.tenants.models import Tenant


def _cached_reads_dropped(tenant_id: int) -> None:
    """The tenant's cached reads of the network (the driver station search) go when the change commits (the same
    as `services.stations_changed`, which imports this module)."""
    cache.invalidate("stations", tenant_id)


def location_changed(*, locations: Iterable[Location | int | None], tenant_id: int) -> None:
    """Publish `LocationChanged` for each location (ids or rows; None ignored), once each, in the caller's
    transaction; the tenant's cached network reads are dropped on commit."""
    _cached_reads_dropped(tenant_id)
    seen: set[int] = set()
    for location in locations:
        location_id = location.pk if isinstance(location, Location) else location
        if location_id is None or location_id in seen:
            continue
        seen.add(location_id)
        events.publish(events.LocationChanged(tenant_id=tenant_id, location_id=location_id))


def evse_changed(*, evse: Evse, removed: bool = False) -> None:
    _cached_reads_dropped(evse.tenant_id)
    events.publish(
        events.EvseChanged(
            tenant_id=evse.tenant_id, evse_id=evse.pk, charge_point_id=evse.charge_point_id, removed=removed
        )
    )


def _set(row: Any, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(row, name, value)


# --------------------------------------------------------------------------- locations


@transaction.atomic
def location_create(*, tenant: Tenant, **fields: Any) -> Location:
    location = Location(tenant=tenant, **fields)
    location.full_clean()
    location.save()
    location_changed(locations=[location], tenant_id=tenant.pk)
    return location


@transaction.atomic
def location_update(*, location: Location, **changes: Any) -> Location:
    changes.pop("tenant", None)  # a location never changes tenant
    location = Location.objects.select_for_update().get(pk=location.pk)
    _set(location, changes)
    location.full_clean()
    location.save()
    location_changed(locations=[location], tenant_id=location.tenant_id)
    return location


@transaction.atomic
def location_delete(*, location: Location) -> None:
    """Only a location nothing points to is deleted (callers check `apps.core.deletion` first); one in use is
    decommissioned instead (OCPI has no deletion of locations). Nothing is published: no partner can have a
    location without charge points that it could still show."""
    location.delete()


# --------------------------------------------------------------------------- charge points (their place)


@transaction.atomic
def charge_point_update(*, charge_point: ChargePoint, **changes: Any) -> ChargePoint:
    """Plain fields of a charge point (the API's PATCH, the admin form). A charger moved to another location changes
    both locations (its EVSEs leave one and join the other)."""
    changes.pop("tenant", None)
    charge_point = ChargePoint.objects.select_for_update().get(pk=charge_point.pk)
    before = charge_point.location_id
    _set(charge_point, changes)
    charge_point.save()
    if charge_point.location_id != before:
        location_changed(locations=[before, charge_point.location_id], tenant_id=charge_point.tenant_id)
    return charge_point


@transaction.atomic
def charge_point_delete(*, charge_point: ChargePoint) -> None:
    """Only a charger nothing points to (callers check `apps.core.deletion`); its EVSEs go with it, so its location
    is told again without them."""
    location_id, tenant_id = charge_point.location_id, charge_point.tenant_id
    charge_point.delete()
    location_changed(locations=[location_id], tenant_id=tenant_id)


# --------------------------------------------------------------------------- EVSEs and connectors


@transaction.atomic
def evse_update(*, evse: Evse, **changes: Any) -> Evse:
    changes.pop("tenant", None)
    changes.pop("charge_point", None)  # an EVSE never moves to another charger (the serializer refuses it)
    evse = Evse.objects.select_for_update().get(pk=evse.pk)
    _set(evse, changes)
    evse.full_clean()
    evse.save()
    evse_changed(evse=evse)
    return evse


@transaction.atomic
def evse_delete(*, evse: Evse) -> None:
    """Only an EVSE nothing points to (callers check `apps.core.deletion`); its location is told again without it."""
    location_id = ChargePoint.objects.filter(pk=evse.charge_point_id).values_list("location_id", flat=True).first()
    tenant_id = evse.tenant_id
    evse.delete()
    location_changed(locations=[location_id], tenant_id=tenant_id)


@transaction.atomic
def connector_update(*, connector: Connector, **changes: Any) -> Connector:
    connector = Connector.objects.select_for_update().select_related("evse").get(pk=connector.pk)
    before = connector.evse
    _set(connector, changes)
    connector.full_clean()
    connector.save()
    evse_changed(evse=connector.evse)
    if connector.evse_id != before.pk:
        evse_changed(evse=before)
    return connector


@transaction.atomic
def connector_delete(*, connector: Connector) -> None:
    evse = connector.evse
    connector.delete()
    evse_changed(evse=evse)
