"""Reads of the CPO data a roaming partner may see (OCPI Sender side): only the partner's tenant's rows.

Locations: the tenant's published locations. `ocpi_last_updated` is OCPI's Location.last_updated ("this Location
or one of its EVSEs or Connectors"), computed in the database so that date_from/date_to and the stable order of
the paginated list use the same value the objects carry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import DateTimeField, F, Max, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from apps.roaming.models import RoamingPartner
from apps.sessions.models import Cdr, ChargingSession
from apps.stations.models import ChargePoint, Connector, Evse, Location
from apps.tariffs import selectors as tariff_selectors
from apps.tariffs.models import Tariff, TariffAssignment

_EPOCH = Value("1970-01-01T00:00:00Z", output_field=DateTimeField())

EvseRows = list[tuple[Evse, ChargePoint, list[Connector]]]


def _max_of(queryset: QuerySet[Evse] | QuerySet[Connector], group: str, field: str) -> Subquery:
    """The latest `field` of the location's rows (a correlated aggregate, one index probe per location)."""
    return Subquery(
        queryset.order_by().values(group).annotate(m=Max(field)).values("m")[:1],
        output_field=DateTimeField(),
    )


def location_list(*, partner: RoamingPartner, published_only: bool = True) -> QuerySet[Location]:
    evses = Evse.objects.filter(charge_point__location_id=OuterRef("pk"))
    connectors = Connector.objects.filter(evse__charge_point__location_id=OuterRef("pk"))
    locations = Location.objects.filter(tenant_id=partner.tenant_id)
    if published_only:
        locations = locations.filter(publish=True)
    return locations.annotate(
        ocpi_last_updated=Greatest(
            F("updated_at"),
            Coalesce(_max_of(evses, "charge_point__location_id", "updated_at"), _EPOCH),
            Coalesce(_max_of(evses, "charge_point__location_id", "status_received_at"), _EPOCH),
            Coalesce(_max_of(connectors, "evse__charge_point__location_id", "updated_at"), _EPOCH),
        )
    ).order_by()


def location_get(*, partner: RoamingPartner, location_id: str) -> Location | None:
    """By OCPI id, or by primary key for a location without one (objects.location_id)."""
    found = location_list(partner=partner).filter(ocpi_id=location_id).first()
    if found is None and location_id.isdigit() and len(location_id) < 10:
        found = location_list(partner=partner).filter(ocpi_id="", pk=int(location_id)).first()
    return found


def location_for_push(*, partner: RoamingPartner, pk: int) -> Location | None:
    """One location of the partner's tenant by primary key, published or not (a push tells `publish: false` too)."""
    return location_list(partner=partner, published_only=False).filter(pk=pk).first()


def location_evses(locations: list[Location]) -> dict[int, EvseRows]:
    """The EVSEs of each location with their charge point and connectors: three queries for a whole page."""
    by_location: dict[int, EvseRows] = defaultdict(list)
    if not locations:
        return by_location
    evses = list(
        Evse.objects.filter(charge_point__location__in=locations)
        .select_related("charge_point")
        .order_by("charge_point__location_id", "charge_point_id", "connector_id")
    )
    connectors: dict[int, list[Connector]] = defaultdict(list)
    for connector in Connector.objects.filter(evse__in=evses).order_by("evse_id", "id"):
        connectors[connector.evse_id].append(connector)
    for evse in evses:
        cp = evse.charge_point
        if cp.location_id is not None:
            by_location[cp.location_id].append((evse, cp, connectors[evse.pk]))
    return by_location


def evse_tariff_ids(*, partner: RoamingPartner, evses: Iterable[tuple[Evse, ChargePoint]]) -> dict[int, list[str]]:
    """EVSE pk -> the OCPI ids of the tariff the partner's drivers are charged there now (Connector.tariff_ids):
    the tariff our pricing chooses for an identified driver (EVSE > charge point > location > tenant default, see
    `tariffs.selectors.pricing_selections`), named only when the partner sees it (`tariff_list`), so that every id
    we send is one it can resolve. No tariff: no ids (OCPI: "no tariff information"). Four queries for a page."""
    sites = {
        evse.pk: tariff_selectors.PricingSite(evse.tenant_id, evse.pk, cp.pk, cp.location_id) for evse, cp in evses
    }
    if not sites:
        return {}
    selections = tariff_selectors.pricing_selections(
        sites=list(sites.values()), at=timezone.now(), party=tariff_selectors.PricingParty(identified=True)
    )
    visible = set(tariff_list(partner=partner).values_list("pk", flat=True))
    result: dict[int, list[str]] = {}
    for evse_pk, site in sites.items():
        tariff = selections[site].tariff
        if tariff is not None and tariff.pk in visible:
            result[evse_pk] = [tariff.ocpi_id]
    return result


def tariff_list(*, partner: RoamingPartner) -> QuerySet[Tariff]:
    """The tariffs `partner` may see: those chosen for it, else the tenant's public ones (attached to the network by
    an assignment: what a driver of theirs can be charged at our connectors)."""
    tariffs = Tariff.objects.filter(tenant_id=partner.tenant_id).select_related("tenant")
    chosen = partner.tariffs.values("pk")
    if chosen.exists():
        return tariffs.filter(pk__in=chosen)
    return tariffs.filter(pk__in=TariffAssignment.objects.filter(tenant_id=partner.tenant_id).values("tariff_id"))


def cdr_list(*, partner: RoamingPartner) -> QuerySet[Cdr]:
    """The CDRs of this partner's drivers on the tenant's network (sessions marked with its party)."""
    return Cdr.objects.filter(tenant_id=partner.tenant_id, session__roaming_partner=partner.party)


def session_list(*, partner: RoamingPartner) -> QuerySet[ChargingSession]:
    """The sessions of this partner's drivers on the tenant's network; `ocpi_last_updated` counts meter values."""
    return (
        ChargingSession.objects.filter(tenant_id=partner.tenant_id, roaming_partner=partner.party)
        .select_related("tenant", "token", "location", "evse", "evse_connector", "charge_point")
        .annotate(ocpi_last_updated=Greatest(F("updated_at"), Coalesce(F("last_meter_at"), F("updated_at"))))
    )
