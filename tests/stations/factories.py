from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.stations import certificates
from apps.stations.models import (
    CertificateAuthority,
    CertificateSigningRequest,
    ChargePoint,
    Command,
    Connector,
    DiagnosticsUpload,
    Evse,
    FirmwareCampaign,
    FirmwareImage,
    InstalledCertificate,
    Location,
    SecurityEvent,
)
from tests.tenants.factories import TenantFactory


class LocationFactory(DjangoModelFactory[Location]):
    class Meta:
        model = Location

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Site {n}")
    address = "Energiestraße 1"
    postal_code = "10115"
    city = "Berlin"
    country = "DE"
    latitude = Decimal("52.520008")
    longitude = Decimal("13.404954")


class ChargePointFactory(DjangoModelFactory[ChargePoint]):
    """Without a password; use `registered_charger` for a usable secret."""

    class Meta:
        model = ChargePoint

    tenant = factory.SubFactory(TenantFactory)
    location = factory.SubFactory(LocationFactory, tenant=factory.SelfAttribute("..tenant"))
    identity = factory.Sequence(lambda n: f"CP-{n:05d}")


class EvseFactory(DjangoModelFactory[Evse]):
    class Meta:
        model = Evse

    charge_point = factory.SubFactory(ChargePointFactory)
    tenant = factory.SelfAttribute("charge_point.tenant")
    connector_id = 1
    evse_uid = factory.Sequence(lambda n: f"DE*TST*E{n:05d}*1")


class ConnectorFactory(DjangoModelFactory[Connector]):
    class Meta:
        model = Connector

    evse = factory.SubFactory(EvseFactory)


class CommandFactory(DjangoModelFactory[Command]):
    class Meta:
        model = Command

    charge_point = factory.SubFactory(ChargePointFactory)
    tenant = factory.SelfAttribute("charge_point.tenant")
    action = "Reset"
    payload = factory.LazyFunction(lambda: {"type": "Soft"})


class FirmwareImageFactory(DjangoModelFactory[FirmwareImage]):
    class Meta:
        model = FirmwareImage

    tenant = factory.SubFactory(TenantFactory)
    name = "Eve firmware"
    version = factory.Sequence(lambda n: f"6.{n}.0")
    file = factory.django.FileField(filename="firmware.bin", data=b"FW")


class FirmwareCampaignFactory(DjangoModelFactory[FirmwareCampaign]):
    class Meta:
        model = FirmwareCampaign

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")
    firmware = factory.SubFactory(FirmwareImageFactory, tenant=factory.SelfAttribute("..tenant"))
    retrieve_at = factory.LazyFunction(timezone.now)


class DiagnosticsUploadFactory(DjangoModelFactory[DiagnosticsUpload]):
    class Meta:
        model = DiagnosticsUpload

    charge_point = factory.SubFactory(ChargePointFactory)
    tenant = factory.SelfAttribute("charge_point.tenant")


class SecurityEventFactory(DjangoModelFactory[SecurityEvent]):
    class Meta:
        model = SecurityEvent

    charge_point = factory.SubFactory(ChargePointFactory)
    tenant = factory.SelfAttribute("charge_point.tenant")
    type = "TamperDetectionActivated"
    timestamp = factory.LazyFunction(timezone.now)
    critical = True


class CertificateSigningRequestFactory(DjangoModelFactory[CertificateSigningRequest]):
    class Meta:
        model = CertificateSigningRequest

    charge_point = factory.SubFactory(ChargePointFactory)
    tenant = factory.SelfAttribute("charge_point.tenant")
    csr = "-----BEGIN CERTIFICATE REQUEST-----\n...\n-----END CERTIFICATE REQUEST-----\n"
    common_name = factory.SelfAttribute("charge_point.identity")
    status = CertificateSigningRequest.Status.REJECTED
    detail = "test"


class InstalledCertificateFactory(DjangoModelFactory[InstalledCertificate]):
    class Meta:
        model = InstalledCertificate

    charge_point = factory.SubFactory(ChargePointFactory)
    tenant = factory.SelfAttribute("charge_point.tenant")
    certificate_type = InstalledCertificate.Type.CENTRAL_SYSTEM_ROOT
    issuer_name_hash = "a" * 64
    issuer_key_hash = "b" * 64
    serial_number = factory.Sequence(lambda n: f"{n + 1:x}")
    source = "GetInstalledCertificateIds"


def certificate_authority(tenant: Any) -> CertificateAuthority:
    issued = certificates.ca_create(name=tenant.name)
    return CertificateAuthority.objects.create(
        tenant=tenant,
        certificate=issued.certificate_pem,
        private_key_encrypted=issued.private_key_encrypted,
        not_after=issued.not_after,
    )
