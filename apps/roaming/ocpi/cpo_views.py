"""CPO Sender interfaces (we own the data): GET lists (paginated, transport_and_format.asciidoc) and, for locations,
GET of one Location, EVSE or Connector (mod_locations.asciidoc "Sender Interface"). A partner sees only its
tenant's data."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse

from apps.roaming import cpo_selectors
from apps.roaming.models import Module
from apps.roaming.ocpi import objects
from apps.roaming.ocpi.transport import (
    UNKNOWN_LOCATION,
    OcpiError,
    OcpiRequest,
    envelope,
    ocpi_view,
    paginate,
)
from apps.stations.models import Location
from apps.tariffs import selectors as tariff_selectors

PREFIX = "/ocpi/cpo/2.2.1"

# identifier -> (our interface role, path), merged into views.IMPLEMENTED (version details)
SENDER_ENDPOINTS: dict[str, tuple[str, str]] = {
    Module.LOCATIONS: ("SENDER", f"{PREFIX}/locations"),
    Module.TARIFFS: ("SENDER", f"{PREFIX}/tariffs"),
    Module.CDRS: ("SENDER", f"{PREFIX}/cdrs"),
    Module.SESSIONS: ("SENDER", f"{PREFIX}/sessions"),
}


def _locations_page(ocpi: OcpiRequest, rows: list[Location]) -> list[dict[str, Any]]:
    evses = cpo_selectors.location_evses(rows)
    tariffs = cpo_selectors.evse_tariff_ids(
        partner=ocpi.partner, evses=[(evse, cp) for rows_of in evses.values() for evse, cp, _ in rows_of]
    )
    return [objects.location_object(row, ocpi.partner, evses.get(row.pk, []), tariffs) for row in rows]


def _unknown(what: str) -> OcpiError:
    return OcpiError(UNKNOWN_LOCATION, f"Unknown {what}.", http_status=404)


@ocpi_view(methods=["GET"], module=Module.LOCATIONS, functional=True)
def locations(
    ocpi: OcpiRequest, location_id: str | None = None, evse_uid: str | None = None, connector_id: str | None = None
) -> HttpResponse:
    if location_id is None:
        return paginate(
            ocpi,
            cpo_selectors.location_list(partner=ocpi.partner),
            lambda rows: _locations_page(ocpi, rows),
            updated_field="ocpi_last_updated",
        )
    location = cpo_selectors.location_get(partner=ocpi.partner, location_id=location_id)
    if location is None:
        raise _unknown(f"location {location_id!r}")
    evses = cpo_selectors.location_evses([location]).get(location.pk, [])
    tariffs = cpo_selectors.evse_tariff_ids(partner=ocpi.partner, evses=[(evse, cp) for evse, cp, _ in evses])
    if evse_uid is None:
        return envelope(ocpi.http, objects.location_object(location, ocpi.partner, evses, tariffs))
    match = next(((e, cp, c) for e, cp, c in evses if objects.evse_uid(e) == evse_uid), None)
    if match is None:
        raise _unknown(f"EVSE {evse_uid!r} of location {location_id!r}")
    evse, charge_point, connectors = match
    if connector_id is None:
        return envelope(ocpi.http, objects.evse_object(evse, charge_point, connectors, tariff_ids=tariffs.get(evse.pk)))
    connector = next((c for c in connectors if objects.connector_id(c) == connector_id), None)
    if connector is None:
        raise _unknown(f"connector {connector_id!r} of EVSE {evse_uid!r}")
    return envelope(ocpi.http, objects.connector_object(connector, tariff_ids=tariffs.get(evse.pk)))


@ocpi_view(methods=["GET"], module=Module.TARIFFS, functional=True)
def tariffs(ocpi: OcpiRequest) -> HttpResponse:
    return paginate(
        ocpi,
        cpo_selectors.tariff_list(partner=ocpi.partner),
        lambda rows: [objects.tariff_object(tariff_selectors.tariff_document(t), ocpi.partner) for t in rows],
    )


@ocpi_view(methods=["GET"], module=Module.CDRS, functional=True)
def cdrs(ocpi: OcpiRequest) -> HttpResponse:
    return paginate(
        ocpi,
        cpo_selectors.cdr_list(partner=ocpi.partner),
        lambda rows: [objects.cdr_object(c) for c in rows],
        updated_field="last_updated",
    )


@ocpi_view(methods=["GET"], module=Module.SESSIONS, functional=True)
def sessions(ocpi: OcpiRequest) -> HttpResponse:
    return paginate(
        ocpi,
        cpo_selectors.session_list(partner=ocpi.partner),
        lambda rows: [objects.session_object(s, ocpi.partner) for s in rows],
        updated_field="ocpi_last_updated",
    )
