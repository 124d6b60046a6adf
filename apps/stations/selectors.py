"""Reads of the stations domain, with their joins applied."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from apps.stations.models import (
    CertificateAuthority,
    CertificateSigningRequest,
    ChargePoint,
    Command,
    Connector,
    Evse,
    InstalledCertificate,
    Location,
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


def partner_location_list() -> QuerySet[PartnerLocation]:
    """Partner locations (eMSP: other CPOs' stations our drivers may use), with their roaming partner."""
    return PartnerLocation.objects.select_related("partner").order_by("pk")
