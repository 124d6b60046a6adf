"""Reads of charging sessions, CDRs and reservations (querysets with their joins applied)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import F, FloatField, QuerySet
from django.db.models.expressions import RawSQL

from apps.sessions.models import Cdr, ChargingSession, Reservation
from apps.stations.models import Location


def session_list() -> QuerySet[ChargingSession]:
    return ChargingSession.objects.select_related("charge_point", "location", "evse")


def cdr_list() -> QuerySet[Cdr]:
    return Cdr.objects.all()


def reservation_list() -> QuerySet[Reservation]:
    return Reservation.objects.select_related("charge_point")


EARTH_RADIUS_KM = 6371.0088
# haversine in SQL (no extension needed); the params are lat, lat, lon
HAVERSINE_KM = (
    "2 * %s * asin(sqrt(power(sin(radians(latitude - %s) / 2), 2) + cos(radians(%s)) * cos(radians(latitude))"
    " * power(sin(radians(longitude - %s) / 2), 2)))"
)


def stations_near(
    queryset: QuerySet[Location], *, lat: Decimal | None, lon: Decimal | None, radius_km: float | None
) -> QuerySet[Location]:
    """Published locations with their EVSEs and connectors, nearest first when a point is given."""
    queryset = queryset.filter(publish=True).prefetch_related("charge_points__evses__connectors")
    if lat is None or lon is None:
        return queryset.order_by("pk")
    distance = RawSQL(  # noqa: S611 (constant SQL, values bound as parameters)
        HAVERSINE_KM, (EARTH_RADIUS_KM, float(lat), float(lat), float(lon)), output_field=FloatField()
    )
    queryset = queryset.filter(latitude__isnull=False, longitude__isnull=False).annotate(distance_km=distance)
    if radius_km is not None:
        queryset = queryset.filter(distance_km__lte=radius_km)
    return queryset.order_by(F("distance_km").asc(), "pk")


def location_summary(location: Location) -> dict[str, Any]:
    evses = [evse for cp in location.charge_points.all() for evse in cp.evses.all()]
    connectors = [c for evse in evses for c in evse.connectors.all()]
    return {
        "evses": len(evses),
        "available": sum(1 for e in evses if e.status == "Available"),
        "connector_types": sorted({c.standard for c in connectors}),
        "max_power_w": max((c.max_electric_power or c.max_voltage * c.max_amperage for c in connectors), default=None),
    }
