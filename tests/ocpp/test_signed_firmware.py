"""Signed firmware campaigns (OCPP 1.6 security whitepaper ed. 3, "Secure firmware update") end to end under
daphne: the platform signs the image with the tenant's firmware signing certificate (issued by the tenant CA),
installs the CA on the charger as its ManufacturerRootCertificate, sends SignedUpdateFirmware; the simulated
charger checks the certificate, downloads the file over HTTP from the platform, verifies the signature and
reports each step, which the campaign shows per charger."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from django.core.files.base import ContentFile

from apps.ocpp.simulator import ChargerState, SimConfig, run_charger
from apps.stations import certificates, security, services
from apps.stations.models import (
    CertificateAuthority,
    ChargePoint,
    FirmwareCampaign,
    FirmwareCampaignTarget,
    FirmwareImage,
    InstalledCertificate,
    SecurityEvent,
)
from tests.ocpp.conftest import Station, db, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

FIRMWARE = b"\x7fELF firmware 6.2.0 " * 5000


def _image(station: Station) -> FirmwareImage:
    return FirmwareImage.objects.create(
        tenant=station.tenant, name="Eve", version="6.2.0", file=ContentFile(FIRMWARE, name="eve-6.2.0.bin")
    )


def test_image_is_signed_with_the_tenants_code_signing_certificate(station: Station) -> None:
    image = security.firmware_image_sign(image_id=_image(station).pk)

    ca = CertificateAuthority.objects.get(tenant=station.tenant)
    assert image.sha256 == hashlib.sha256(FIRMWARE).hexdigest()
    assert image.signing_certificate == ca.firmware_signing_certificate
    signing = image.signing_certificate
    assert certificates.firmware_signer_trusted(signing_certificate_pem=signing, root_pem=ca.certificate)
    assert certificates.firmware_signature_valid(
        content=FIRMWARE, signature_b64=image.signature, signing_certificate_pem=image.signing_certificate
    )
    assert not certificates.firmware_signature_valid(
        content=FIRMWARE + b"!", signature_b64=image.signature, signing_certificate_pem=image.signing_certificate
    )
    signer = certificates.load_certificate(image.signing_certificate)
    assert "codeSigning" in str(signer.extensions)
    assert len(image.signature) <= 800  # SignedUpdateFirmware.firmware.signature maxLength
    # signed once per signing certificate: a second campaign does not sign again
    assert security.firmware_image_sign(image_id=image.pk).signature == image.signature


async def _campaign_on_simulator(
    station: Station, server: str, image: FirmwareImage | None = None, security_event: str = ""
) -> tuple[FirmwareCampaign, ChargerState]:
    """Run a signed campaign on a simulated charger until its target ends (and, given, the charger's security
    event is stored: the charger is stopped afterwards, and a stopped charger drops what it had not sent)."""
    image = image or await db(_image)(station)
    campaign = await db(services.firmware_campaign_create)(
        tenant=station.tenant, name="Spring", firmware=image, charge_points=[station.charge_point]
    )
    campaign.signed = True
    await db(campaign.save)()
    config = SimConfig(url=server, password=station.password, connectors=1, heartbeat=30, idle_seconds=(3600, 3600))
    stop = asyncio.Event()
    state_box: list[ChargerState] = []
    task = asyncio.create_task(run_charger(station.charge_point.identity, config, stop))
    try:
        await wait_for(db(ChargePoint.objects.filter(pk=station.charge_point.pk, online=True).exists), timeout=20)
        base = server.replace("ws://", "http://")
        await db(services.firmware_campaign_run)(campaign=campaign, base_url=base, timeout=10)
        target = await db(FirmwareCampaignTarget.objects.get)(campaign=campaign)
        if target.state != FirmwareCampaignTarget.State.REFUSED:
            await wait_for(
                db(
                    FirmwareCampaignTarget.objects.filter(
                        pk=target.pk, state__in=["Installed", "InvalidSignature", "DownloadFailed"]
                    ).exists
                ),
                timeout=30,
            )
        if security_event:
            await wait_for(db(SecurityEvent.objects.filter(type=security_event).exists), timeout=20)
    finally:
        stop.set()
        state_box.append(await task)
    return campaign, state_box[0]


async def test_signed_campaign_reaches_installed_on_a_simulated_charger(server: str, station: Station) -> None:
    campaign, charger = await _campaign_on_simulator(station, server)

    target = await db(FirmwareCampaignTarget.objects.select_related("command").get)(campaign=campaign)
    assert target.state == "Installed", target.detail
    assert target.command.action == "SignedUpdateFirmware"
    assert target.command.payload["requestId"] == target.pk
    assert charger.firmware_installed == [hashlib.sha256(FIRMWARE).hexdigest()]  # the bytes the platform signed
    ca = await db(CertificateAuthority.objects.get)(tenant=station.tenant)
    assert charger.certificates["ManufacturerRootCertificate"] == [ca.certificate]
    root = await db(InstalledCertificate.objects.get)(charge_point=station.charge_point)
    assert root.certificate_type == InstalledCertificate.Type.MANUFACTURER_ROOT
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    assert (cp.signed_firmware_status, cp.signed_firmware_request_id) == ("Installed", target.pk)


async def test_tampered_image_is_reported_invalid_signature_and_never_installed(server: str, station: Station) -> None:
    image = await db(_image)(station)
    await db(security.firmware_image_sign)(image_id=image.pk)
    # the file changes on disk after signing (a corrupted or tampered download)
    with open(image.file.path, "r+b") as file:
        file.seek(100)
        file.write(b"EVIL")
    campaign, charger = await _campaign_on_simulator(station, server, image, "InvalidFirmwareSignature")

    target = await db(FirmwareCampaignTarget.objects.get)(campaign=campaign)
    assert target.state == "InvalidSignature"
    assert charger.firmware_installed == []


async def test_charger_refusing_the_root_certificate_is_refused_with_the_reason(server: str, station: Station) -> None:
    """A signing certificate the charger cannot chain to its manufacturer roots is answered InvalidCertificate
    (and a security event); the campaign shows the refusal with the charger's answer."""
    # the platform believes the charger holds the CA, but the charger does not (reset to factory state)
    ca = await db(security.certificate_authority_for)(tenant_id=station.tenant.pk)
    data = certificates.hash_data(certificates.load_certificate(ca.certificate))
    await db(InstalledCertificate.objects.create)(
        tenant=station.tenant,
        charge_point=station.charge_point,
        certificate_type=InstalledCertificate.Type.MANUFACTURER_ROOT,
        issuer_name_hash=data.issuer_name_hash,
        issuer_key_hash=data.issuer_key_hash,
        serial_number=data.serial_number,
    )
    campaign, charger = await _campaign_on_simulator(
        station, server, security_event="InvalidFirmwareSigningCertificate"
    )

    target = await db(FirmwareCampaignTarget.objects.get)(campaign=campaign)
    assert target.state == FirmwareCampaignTarget.State.REFUSED
    assert "InvalidCertificate" in target.detail
    assert charger.firmware_installed == []
