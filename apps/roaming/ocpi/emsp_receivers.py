"""OCPI 2.2.1 Receiver interfaces of our eMSP role: what a CPO partner pushes about its network and our drivers'
sessions on it (mod_locations, mod_tariffs, mod_sessions, mod_cdrs "Receiver interface"), under
`/ocpi/emsp/2.2.1/<module>`.

- `locations/{country_code}/{party_id}/{location_id}[/{evse_uid}[/{connector_id}]]`: GET, PUT, PATCH;
- `tariffs/{country_code}/{party_id}/{tariff_id}`: GET, PUT, DELETE;
- `sessions/{country_code}/{party_id}/{session_id}`: GET, PUT, PATCH;
- `cdrs`: POST (answers the new CDR's URL in the `Location` header), `cdrs/{id}`: GET of that URL.

Rules (one place for all four): the URL's country_code/party_id must be a party the partner registered (or, for a
hub, any party behind it) and equal the object's, else 2001; every PATCH carries last_updated (2001 without); a
PATCH or GET of an object never received is 2003 (locations, "unknown location") or 2000 (others) with HTTP 404.
Out of order: an object (PUT or PATCH) older than the stored one by `last_updated` is answered 1000 and changes
nothing; the newest state the CPO sent wins, whatever order pushes, retries and pulls arrive in (OCPI asks the
Receiver to accept what it is sent; keeping the newest is what makes a late retry harmless). The writes go through
the domain services (stations / tariffs / sessions); this module only translates.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse

from apps.roaming import services as roaming_services
from apps.roaming import tokens as token_store
from apps.roaming.models import RoamingPartner, Role
from apps.roaming.ocpi import emsp_parse
from apps.roaming.ocpi import fields as f
from apps.roaming.ocpi.transport import (
    CLIENT_ERROR,
    INVALID_PARAMETERS,
    UNKNOWN_LOCATION,
    OcpiError,
    OcpiRequest,
    base_url,
    envelope,
    ocpi_view,
)
from apps.sessions import services as session_services
from apps.sessions.models import PartnerCdr, PartnerSession
from apps.stations import selectors as station_selectors
from apps.stations import services as station_services
from apps.stations.models import PartnerConnector, PartnerEvse, PartnerLocation
from apps.tariffs import services as tariff_services
from apps.tariffs.models import PartnerTariff

STALE = "Older than what we hold (last_updated): kept the newer data."


def parties_of(partner: RoamingPartner) -> set[tuple[str, str]] | None:
    """The (country_code, party_id) pairs the partner may send objects of; None: any (a hub, for the parties behind
    it: those it announced in hubclientinfo, or any when it announced none)."""
    if Role.HUB in (partner.roles or []):
        return None
    return token_store.partner_parties(partner)


def check_party(partner: RoamingPartner, country_code: str, party_id: str, what: str = "URL") -> tuple[str, str]:
    party = (country_code.upper(), party_id.upper())
    allowed = parties_of(partner)
    if allowed is not None and party not in allowed:
        raise OcpiError(
            INVALID_PARAMETERS,
            f"{what}: {party[0]}/{party[1]} is not a party you registered; send only your own objects.",
        )
    return party


def _url_party(ocpi: OcpiRequest, country_code: str, party_id: str) -> tuple[str, str]:
    f.segment(country_code, "country_code", 2)
    f.segment(party_id, "party_id", 3)
    return check_party(ocpi.partner, country_code, party_id)


def _same(body_value: str, url_value: str, name: str) -> None:
    if body_value.upper() != url_value.upper():
        raise OcpiError(INVALID_PARAMETERS, f"{name} {body_value!r} differs from the URL's {url_value!r}.")


def _patch(ocpi: OcpiRequest, name: str) -> dict[str, Any]:
    patch = f.as_object(ocpi.json_body(), name)
    f.datetime(patch, "last_updated", name)  # required in every PATCH
    return patch


def _done(ocpi: OcpiRequest, applied: bool, module: str) -> HttpResponse:
    """The answer to a write; the partner pushes this module, so its scheduled pull waits."""
    roaming_services.pull_push_seen(partner_id=ocpi.partner.pk, module=module)
    return envelope(ocpi.http, None, message="Success" if applied else STALE)


# --------------------------------------------------------------------------- locations


def _unknown_location(what: str) -> OcpiError:
    return OcpiError(UNKNOWN_LOCATION, f"Unknown {what}.", http_status=404)


def _stored_location(ocpi: OcpiRequest, party: tuple[str, str], location_id: str) -> PartnerLocation:
    location = station_selectors.partner_location_get(
        partner_id=ocpi.partner.pk, country_code=party[0], party_id=party[1], ocpi_id=location_id
    )
    if location is None:
        raise _unknown_location(f"location {party[0]}/{party[1]}/{location_id}")
    return location


def _stored_evse(location: PartnerLocation, evse_uid: str) -> PartnerEvse:
    evse = next((e for e in location.evses.all() if e.uid == evse_uid), None)
    if evse is None:
        raise _unknown_location(f"EVSE {evse_uid} of location {location.ocpi_id}")
    return evse


def _stored_connector(evse: PartnerEvse, connector_id: str) -> PartnerConnector:
    connector = next((c for c in evse.connectors.all() if c.connector_id == connector_id), None)
    if connector is None:
        raise _unknown_location(f"connector {connector_id} of EVSE {evse.uid}")
    return connector


@ocpi_view(methods=["GET", "PUT", "PATCH"], module="locations", functional=True)
def locations(
    ocpi: OcpiRequest,
    country_code: str,
    party_id: str,
    location_id: str,
    evse_uid: str | None = None,
    connector_id: str | None = None,
) -> HttpResponse:
    party = _url_party(ocpi, country_code, party_id)
    f.segment(location_id, "location_id", 36)
    if evse_uid is not None:
        f.segment(evse_uid, "evse_uid", 36)
    if connector_id is not None:
        f.segment(connector_id, "connector_id", 36)
    method = ocpi.http.method

    if method == "GET":
        location = _stored_location(ocpi, party, location_id)
        if evse_uid is None:
            return envelope(ocpi.http, station_selectors.partner_location_object(location))
        evse = _stored_evse(location, evse_uid)
        if connector_id is None:
            return envelope(ocpi.http, station_selectors.partner_evse_object(evse))
        return envelope(ocpi.http, station_selectors.partner_connector_object(_stored_connector(evse, connector_id)))

    try:
        if evse_uid is None:  # the Location
            if method == "PUT":
                data = emsp_parse.parse_location(ocpi.json_body())
                evses_given = True
            else:
                patch = _patch(ocpi, "location")
                stored = _stored_location(ocpi, party, location_id)
                evses_given = "evses" in patch
                merged = {**stored.data, **patch}
                if not evses_given:
                    merged.pop("evses", None)
                data = emsp_parse.parse_location(merged, with_evses=evses_given)
            _same(data.country_code, party[0], "location.country_code")
            _same(data.party_id, party[1], "location.party_id")
            _same(data.ocpi_id, location_id, "location.id")
            _, applied = station_services.partner_location_put(
                tenant_id=ocpi.partner.tenant_id, partner_id=ocpi.partner.pk, location=data, evses_given=evses_given
            )
            return _done(ocpi, applied, "locations")
        if connector_id is None:  # an EVSE
            connectors_given = True
            if method == "PUT":
                evse_data = emsp_parse.parse_evse(ocpi.json_body())
            else:
                patch = _patch(ocpi, "evse")
                stored_evse = _stored_evse(_stored_location(ocpi, party, location_id), evse_uid)
                connectors_given = "connectors" in patch
                evse_data = emsp_parse.parse_evse({**stored_evse.data, **patch}, with_connectors=connectors_given)
            _same(evse_data.uid, evse_uid, "evse.uid")
            applied = station_services.partner_evse_put(
                tenant_id=ocpi.partner.tenant_id,
                partner_id=ocpi.partner.pk,
                country_code=party[0],
                party_id=party[1],
                location_id=location_id,
                evse=evse_data,
                connectors_given=connectors_given,
            )
            return _done(ocpi, applied, "locations")
        if method == "PUT":  # a Connector
            connector = emsp_parse.parse_connector(ocpi.json_body())
        else:
            patch = _patch(ocpi, "connector")
            location = _stored_location(ocpi, party, location_id)
            stored_connector = _stored_connector(_stored_evse(location, evse_uid), connector_id)
            connector = emsp_parse.parse_connector({**stored_connector.data, **patch})
        _same(connector.connector_id, connector_id, "connector.id")
        applied = station_services.partner_connector_put(
            tenant_id=ocpi.partner.tenant_id,
            partner_id=ocpi.partner.pk,
            country_code=party[0],
            party_id=party[1],
            location_id=location_id,
            evse_uid=evse_uid,
            connector=connector,
        )
        return _done(ocpi, applied, "locations")
    except station_services.PartnerObjectUnknown as unknown:
        raise _unknown_location(unknown.message.removeprefix("Unknown ").rstrip(".")) from None


# --------------------------------------------------------------------------- tariffs


def _unknown(what: str) -> OcpiError:
    return OcpiError(CLIENT_ERROR, f"Unknown {what}.", http_status=404)


@ocpi_view(methods=["GET", "PUT", "DELETE"], module="tariffs", functional=True)
def tariffs(ocpi: OcpiRequest, country_code: str, party_id: str, tariff_id: str) -> HttpResponse:
    party = _url_party(ocpi, country_code, party_id)
    f.segment(tariff_id, "tariff_id", 36)
    partner = ocpi.partner
    method = ocpi.http.method
    if method == "GET":
        tariff = PartnerTariff.objects.filter(
            partner=partner, country_code=party[0], party_id=party[1], ocpi_id=tariff_id
        ).first()
        if tariff is None:
            raise _unknown(f"tariff {party[0]}/{party[1]}/{tariff_id}")
        return envelope(ocpi.http, tariff.data)
    if method == "DELETE":
        if not tariff_services.partner_tariff_delete(
            tenant_id=partner.tenant_id,
            partner_id=partner.pk,
            country_code=party[0],
            party_id=party[1],
            ocpi_id=tariff_id,
        ):
            raise _unknown(f"tariff {party[0]}/{party[1]}/{tariff_id}")
        return _done(ocpi, True, "tariffs")
    country, pid, ocpi_id, currency, data, last_updated = emsp_parse.parse_tariff(ocpi.json_body())
    _same(country, party[0], "tariff.country_code")
    _same(pid, party[1], "tariff.party_id")
    _same(ocpi_id, tariff_id, "tariff.id")
    _, applied = tariff_services.partner_tariff_put(
        tenant_id=partner.tenant_id,
        partner_id=partner.pk,
        country_code=party[0],
        party_id=party[1],
        ocpi_id=tariff_id,
        currency=currency,
        data=data,
        last_updated=last_updated,
    )
    return _done(ocpi, applied, "tariffs")


# --------------------------------------------------------------------------- sessions


def _stored_session(ocpi: OcpiRequest, party: tuple[str, str], session_id: str) -> PartnerSession:
    session = PartnerSession.objects.filter(
        partner=ocpi.partner, country_code=party[0], party_id=party[1], ocpi_id=session_id
    ).first()
    if session is None:
        raise _unknown(f"session {party[0]}/{party[1]}/{session_id}")
    return session


@ocpi_view(methods=["GET", "PUT", "PATCH"], module="sessions", functional=True)
def sessions(ocpi: OcpiRequest, country_code: str, party_id: str, session_id: str) -> HttpResponse:
    party = _url_party(ocpi, country_code, party_id)
    f.segment(session_id, "session_id", 36)
    method = ocpi.http.method
    if method == "GET":
        return envelope(ocpi.http, _stored_session(ocpi, party, session_id).data)
    if method == "PUT":
        session = emsp_parse.parse_session(ocpi.json_body())
    else:
        patch = _patch(ocpi, "session")
        stored = _stored_session(ocpi, party, session_id)
        merged = {**stored.data, **patch}
        if patch.get("charging_periods"):  # mod_sessions PATCH: new charging periods are added to the list
            merged["charging_periods"] = list(stored.data.get("charging_periods") or []) + list(
                patch["charging_periods"] if isinstance(patch["charging_periods"], list) else [None]
            )
        else:
            merged["charging_periods"] = stored.data.get("charging_periods")
            if merged["charging_periods"] is None:
                merged.pop("charging_periods")
        session = emsp_parse.parse_session(merged)
    _same(session.country_code, party[0], "session.country_code")
    _same(session.party_id, party[1], "session.party_id")
    _same(session.ocpi_id, session_id, "session.id")
    _, applied = session_services.partner_session_put(
        tenant_id=ocpi.partner.tenant_id, partner_id=ocpi.partner.pk, session=session
    )
    return _done(ocpi, applied, "sessions")


# --------------------------------------------------------------------------- CDRs


def cdr_url(ocpi: OcpiRequest, cdr: PartnerCdr) -> str:
    return f"{base_url(ocpi.http)}/ocpi/emsp/2.2.1/cdrs/{cdr.pk}"


@ocpi_view(methods=["GET", "POST"], module="cdrs", functional=True)
def cdrs(ocpi: OcpiRequest, cdr_id: str | None = None) -> HttpResponse:
    method = ocpi.http.method
    if method == "GET":
        found = None
        if cdr_id is not None and cdr_id.isdigit() and len(cdr_id) < 19:
            found = PartnerCdr.objects.filter(partner=ocpi.partner, pk=int(cdr_id)).first()
        if found is None:
            raise _unknown(f"CDR {cdr_id}")
        return envelope(ocpi.http, found.data)
    if cdr_id is not None:
        raise OcpiError(CLIENT_ERROR, "POST a CDR to the cdrs endpoint itself.", http_status=405)
    cdr = emsp_parse.parse_cdr(ocpi.json_body())
    check_party(ocpi.partner, cdr.country_code, cdr.party_id, what="cdr.country_code/party_id")
    created = session_services.partner_cdr_create(tenant_id=ocpi.partner.tenant_id, partner_id=ocpi.partner.pk, cdr=cdr)
    if created is None:
        raise OcpiError(
            INVALID_PARAMETERS,
            f"CDR {cdr.country_code}/{cdr.party_id}/{cdr.ocpi_id} was already received; CDRs are never changed "
            "(send a credit CDR, then a new one).",
        )
    roaming_services.pull_push_seen(partner_id=ocpi.partner.pk, module="cdrs")
    return envelope(ocpi.http, None, headers={"Location": cdr_url(ocpi, created)})
