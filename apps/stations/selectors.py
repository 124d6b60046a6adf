"""Reads of the stations domain, with their joins applied."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Prefetch, QuerySet

from apps.stations.models import (
    CertificateAuthority,
    CertificateSigningRequest,
    ChargePoint,
    Command,
    Connector,
    Evse,
    InstalledCertificate,
    Location,
    PartnerConnector,
    PartnerEvse,
    PartnerLocation,
    SecurityEvent,
    StatusEvent,
)


def location_list() -> QuerySet[Location]:
    return Location.objects.select_related("tenant").order_by("name")


def charge_point_list() -> QuerySet[ChargePoint]:
    return ChargePoint.objects.select_related("tenant", "location").order_by("identity")


def evse_list() -> QuerySet[Evse]:
    return Evse.objects.select_related("tenant", "charge_point").order_by("charge_point_id", "connector_id")


def connector_list() -> QuerySet[Connector]:
    return Connector.objects.select_related("evse", "evse__tenant")


def command_list() -> QuerySet[Command]:
    return Command.objects.select_related("tenant", "charge_point", "requested_by")


def security_event_list() -> QuerySet[SecurityEvent]:
    return SecurityEvent.objects.select_related("tenant", "charge_point").order_by("-timestamp", "-id")


def signing_request_list() -> QuerySet[CertificateSigningRequest]:
    return CertificateSigningRequest.objects.select_related("tenant", "charge_point").order_by("-id")


def installed_certificate_list() -> QuerySet[InstalledCertificate]:
    return InstalledCertificate.objects.select_related("tenant", "charge_point").order_by(
        "charge_point_id", "certificate_type", "serial_number"
    )


def certificate_authority_list() -> QuerySet[CertificateAuthority]:
    """The tenants' CAs, without their (encrypted) private keys."""
    return CertificateAuthority.objects.select_related("tenant").defer("private_key_encrypted").order_by("tenant_id")


def connector_status_history(
    *, charge_point_id: int, connector_id: int, since: datetime, until: datetime
) -> list[tuple[datetime, str]]:
    """The statuses a connector reported (StatusNotification, charger's timestamp) in [since, until), oldest
    first: (timestamp, status). What a session's idle time is priced from."""
    return list(
        StatusEvent.objects.filter(
            charge_point_id=charge_point_id, connector_id=connector_id, timestamp__gte=since, timestamp__lt=until
        )
        .order_by("timestamp", "id")
        .values_list("timestamp", "status")
    )


# --------------------------------------------------------------------------- partner stations (eMSP role)


def partner_location_list() -> QuerySet[PartnerLocation]:
    return PartnerLocation.objects.select_related("tenant", "partner").order_by("partner_id", "ocpi_id")


def partner_location_get(*, partner_id: int, country_code: str, party_id: str, ocpi_id: str) -> PartnerLocation | None:
    return (
        PartnerLocation.objects.filter(
            partner_id=partner_id, country_code=country_code, party_id=party_id, ocpi_id=ocpi_id
        )
        .prefetch_related(Prefetch("evses", queryset=PartnerEvse.objects.prefetch_related("connectors")))
        .first()
    )


def partner_connector_object(connector: PartnerConnector) -> dict[str, Any]:
    return dict(connector.data)


def partner_evse_object(evse: PartnerEvse) -> dict[str, Any]:
    """The EVSE as received, its connectors and its live status (a status PATCH updates the row and `data`)."""
    return {**evse.data, "connectors": [partner_connector_object(c) for c in evse.connectors.all()]}


def partner_location_object(location: PartnerLocation) -> dict[str, Any]:
    """The OCPI Location object as received (GET on our Receiver answers it), EVSEs and connectors included."""
    return {**location.data, "evses": [partner_evse_object(e) for e in location.evses.all()]}
