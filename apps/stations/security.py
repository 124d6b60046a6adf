"""Writes of the OCPP 1.6 security extension (security whitepaper edition 3): security events, the tenant's
certificate authority, chargers' certificate signing requests and installed certificates, signed firmware and
log status. Commands (CertificateSigned, InstallCertificate, ...) go through `services.send_command` like any
other; what an accepted one changes is applied by `apply_accepted` from `services.command_record_result`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone
from ocpp.messages import get_validator

from apps.core import events
from apps.core.errors import ApplicationError
from apps.stations import certificates
from apps.stations.models import (
    CRITICAL_SECURITY_EVENTS,
    CertificateAuthority,
    CertificateSigningRequest,
    ChargePoint,
    Command,
    CommandStatus,
    FirmwareCampaignTarget,
    FirmwareImage,
    InstalledCertificate,
    SecurityEvent,
)
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- what the charger reports


@transaction.atomic
def security_event_record(
    *, charge_point_id: int, type: str, timestamp: dt.datetime, tech_info: str = ""
) -> SecurityEvent | None:
    """SecurityEventNotification: stored; a critical one (whitepaper list) raises an alert (analytics)."""
    tenant_id = ChargePoint.objects.filter(pk=charge_point_id).values_list("tenant_id", flat=True).first()
    if tenant_id is None:
        return None
    critical = type in CRITICAL_SECURITY_EVENTS
    event = SecurityEvent.objects.create(
        tenant_id=tenant_id,
        charge_point_id=charge_point_id,
        type=type,
        timestamp=timestamp,
        tech_info=tech_info or "",
        critical=critical,
    )
    ChargePoint.objects.filter(pk=charge_point_id).update(last_seen_at=timezone.now())
    if critical:
        events.publish(
            events.SecurityEventReceived(
                tenant_id=tenant_id,
                charge_point_id=charge_point_id,
                security_event_id=event.pk,
                type=type,
                tech_info=event.tech_info,
                at=timestamp,
            )
        )
    return event


@transaction.atomic
def signed_firmware_status_record(*, charge_point_id: int, status: str, request_id: int | None = None) -> None:
    """The charger's progress; a signed campaign's requestId is its target row, so the campaign shows it too."""
    now = timezone.now()
    ChargePoint.objects.filter(pk=charge_point_id).update(
        signed_firmware_status=status,
        signed_firmware_status_at=now,
        signed_firmware_request_id=request_id,
        last_seen_at=now,
    )
    if request_id is not None and status in FirmwareCampaignTarget.State.values:
        FirmwareCampaignTarget.objects.filter(
            pk=request_id, charge_point_id=charge_point_id, campaign__signed=True
        ).exclude(state=FirmwareCampaignTarget.State.REFUSED).update(state=status, updated_at=now)


def log_status_record(*, charge_point_id: int, status: str, request_id: int | None = None) -> None:
    now = timezone.now()
    ChargePoint.objects.filter(pk=charge_point_id).update(
        log_status=status, log_status_at=now, log_request_id=request_id, last_seen_at=now
    )


# --------------------------------------------------------------------------- the tenant's certificate authority


@transaction.atomic
def certificate_authority_for(*, tenant_id: int) -> CertificateAuthority:
    """The tenant's CA, created on first use (one per tenant: a concurrent creator waits on the tenant row)."""
    existing = CertificateAuthority.objects.filter(tenant_id=tenant_id).first()
    if existing is not None:
        return existing
    tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
    existing = CertificateAuthority.objects.filter(tenant_id=tenant_id).first()
    if existing is not None:
        return existing
    issued = certificates.ca_create(name=tenant.name)
    return CertificateAuthority.objects.create(
        tenant=tenant,
        certificate=issued.certificate_pem,
        private_key_encrypted=issued.private_key_encrypted,
        not_after=issued.not_after,
    )


# --------------------------------------------------------------------------- signed firmware


@transaction.atomic
def firmware_signer_for(*, tenant_id: int) -> CertificateAuthority:
    """The tenant's CA with its firmware signing certificate, issued on first use."""
    ca = certificate_authority_for(tenant_id=tenant_id)
    if ca.firmware_signing_certificate:
        return ca
    ca = CertificateAuthority.objects.select_for_update().get(pk=ca.pk)
    if not ca.firmware_signing_certificate:
        signer = certificates.firmware_signer_create(
            ca_certificate_pem=ca.certificate, ca_key_encrypted=ca.private_key_encrypted, name=ca.tenant.name
        )
        ca.firmware_signing_certificate = signer.certificate_pem
        ca.firmware_signing_key_encrypted = signer.private_key_encrypted
        ca.save(update_fields=["firmware_signing_certificate", "firmware_signing_key_encrypted", "updated_at"])
    return ca


def firmware_image_sign(*, image_id: int) -> FirmwareImage:
    """Sign the image with its tenant's firmware signing key (once per signing certificate: a re-issued
    certificate signs again). The file is read in chunks, outside any transaction."""
    image = FirmwareImage.objects.get(pk=image_id)
    ca = firmware_signer_for(tenant_id=image.tenant_id)
    if image.signature and image.signing_certificate == ca.firmware_signing_certificate:
        return image
    with image.file.open("rb") as file:
        signature, sha256 = certificates.firmware_sign(
            chunks=file.chunks(), key_encrypted=ca.firmware_signing_key_encrypted
        )
    image.signature, image.sha256, image.signing_certificate = signature, sha256, ca.firmware_signing_certificate
    image.save(update_fields=["signature", "sha256", "signing_certificate", "updated_at"])
    return image


def manufacturer_root_ensure(*, charge_point: ChargePoint, timeout: float) -> str:
    """Make sure the charger holds the tenant's CA as a ManufacturerRootCertificate (it verifies firmware signing
    certificates against it): '' when it does or just accepted it, else why not (the campaign shows it)."""
    from apps.stations.services import send_command

    ca = certificate_authority_for(tenant_id=charge_point.tenant_id)
    data = certificates.hash_data(certificates.load_certificate(ca.certificate))
    held = InstalledCertificate.objects.filter(
        charge_point=charge_point,
        certificate_type=InstalledCertificate.Type.MANUFACTURER_ROOT,
        issuer_key_hash__iexact=data.issuer_key_hash,
        serial_number__iexact=data.serial_number,
    ).exists()
    if held:
        return ""
    command = send_command(
        charge_point=charge_point,
        action="InstallCertificate",
        payload={"certificateType": InstalledCertificate.Type.MANUFACTURER_ROOT, "certificate": ca.certificate},
        timeout=timeout,
        source="campaign",
    )
    if command.status == CommandStatus.ACCEPTED:
        return ""
    answer = (command.response or {}).get("status") or command.error or command.status
    return f"The charger did not install the tenant CA as its manufacturer root certificate: {answer}."


# --------------------------------------------------------------------------- SignCertificate -> CertificateSigned


@transaction.atomic
def signing_request_record(*, charge_point_id: int, csr: str) -> CertificateSigningRequest:
    """SignCertificate: the CSR is stored; it is accepted (status received, signed next by
    `signing_request_fulfil`) when it is a valid PKCS#10 request whose CN is the charge point id, else rejected
    with the reason. The answer to the charger is Accepted or Rejected accordingly."""
    cp = ChargePoint.objects.get(pk=charge_point_id)
    request = CertificateSigningRequest(tenant_id=cp.tenant_id, charge_point=cp, csr=csr)
    try:
        parsed = certificates.load_csr(csr)
        request.common_name = certificates.common_name(parsed.subject)[:255]
        if request.common_name != cp.identity:
            raise certificates.CertificateError(
                f"The CSR's common name {request.common_name!r} is not the charge point id {cp.identity!r}."
            )
    except certificates.CertificateError as error:
        request.status = CertificateSigningRequest.Status.REJECTED
        request.detail = str(error)[:300]
        logger.warning("%s: SignCertificate rejected: %s", cp.identity, error)
    except ValueError as error:  # an unreadable subject
        request.status = CertificateSigningRequest.Status.REJECTED
        request.detail = f"Unreadable CSR: {error}"[:300]
    request.save()
    return request


@transaction.atomic
def signing_request_sign(*, request_id: int) -> CertificateSigningRequest:
    """Sign an accepted CSR with the tenant's CA (idempotent: a signed request keeps its certificate)."""
    request = CertificateSigningRequest.objects.select_for_update().select_related("charge_point").get(pk=request_id)
    if request.status != CertificateSigningRequest.Status.RECEIVED or request.certificate:
        return request
    ca = certificate_authority_for(tenant_id=request.tenant_id)
    signed = certificates.sign_csr(
        csr=certificates.load_csr(request.csr),
        ca_certificate_pem=ca.certificate,
        ca_key_encrypted=ca.private_key_encrypted,
    )
    request.certificate = signed.chain_pem
    request.serial_number = signed.serial_number
    request.not_after = signed.not_after
    request.status = CertificateSigningRequest.Status.SIGNED
    request.save(update_fields=["certificate", "serial_number", "not_after", "status", "updated_at"])
    return request


async def signing_request_fulfil_async(*, request_id: int, timeout: float = 30.0) -> CertificateSigningRequest:
    """Sign the CSR and send the chain to the charger (CertificateSigned through `send_command`); the request
    ends installed (the charger accepted) or failed. Runs in its own task after SignCertificate was answered."""
    from asgiref.sync import sync_to_async

    from apps.stations import services

    request = await sync_to_async(signing_request_sign)(request_id=request_id)
    if request.status != CertificateSigningRequest.Status.SIGNED:
        return request
    try:
        command = await services.send_command_async(
            charge_point=request.charge_point,
            action="CertificateSigned",
            payload={"certificateChain": request.certificate},
            timeout=timeout,
            source="sign_certificate",
        )
    except ApplicationError as error:
        await sync_to_async(_signing_request_finish)(request_id=request_id, command=None, detail=error.message)
        raise
    return await sync_to_async(_signing_request_finish)(request_id=request_id, command=command, detail="")


@transaction.atomic
def _signing_request_finish(*, request_id: int, command: Command | None, detail: str) -> CertificateSigningRequest:
    request = CertificateSigningRequest.objects.select_for_update().get(pk=request_id)
    accepted = command is not None and command.status == CommandStatus.ACCEPTED
    request.status = CertificateSigningRequest.Status.INSTALLED if accepted else CertificateSigningRequest.Status.FAILED
    request.command = command
    request.detail = (detail or ("" if accepted else f"CertificateSigned {getattr(command, 'status', '')}"))[:300]
    request.save(update_fields=["status", "command", "detail", "updated_at"])
    return request


# --------------------------------------------------------------------------- what accepted commands change


def _upsert_certificate(
    *, charge_point: ChargePoint, certificate_type: str, data: certificates.HashData, pem: str, source: str
) -> None:
    InstalledCertificate.objects.update_or_create(
        charge_point=charge_point,
        hash_algorithm=data.hash_algorithm,
        issuer_name_hash=data.issuer_name_hash,
        issuer_key_hash=data.issuer_key_hash,
        serial_number=data.serial_number,
        defaults={
            "tenant_id": charge_point.tenant_id,
            "certificate_type": certificate_type,
            "certificate": pem,
            "subject": data.subject,
            "not_after": data.not_after,
            "source": source,
        },
    )


def apply_accepted(command: Command, payload: dict[str, Any], response: dict[str, Any]) -> None:
    """The charger's certificates as an accepted security command leaves them (inside `command_record_result`)."""
    action = command.action
    cp = ChargePoint.objects.get(pk=command.charge_point_id)
    if action == "InstallCertificate":
        cert = certificates.load_certificate(payload["certificate"])
        _upsert_certificate(
            charge_point=cp,
            certificate_type=payload["certificateType"],
            data=certificates.hash_data(cert),
            pem=payload["certificate"],
            source=action,
        )
    elif action == "CertificateSigned":
        chain = certificates.load_chain(payload["certificateChain"])
        leaf, issuer = chain[0], (chain[1] if len(chain) > 1 else None)
        _upsert_certificate(
            charge_point=cp,
            certificate_type=InstalledCertificate.Type.CHARGE_POINT,
            data=certificates.hash_data(leaf, issuer),
            pem=payload["certificateChain"],
            source=action,
        )
    elif action == "DeleteCertificate":
        data = payload["certificateHashData"]
        InstalledCertificate.objects.filter(
            charge_point=cp,
            hash_algorithm=data["hashAlgorithm"],
            issuer_name_hash__iexact=data["issuerNameHash"],
            issuer_key_hash__iexact=data["issuerKeyHash"],
            serial_number__iexact=data["serialNumber"].lstrip("0") or "0",
        ).delete()
    elif action == "GetInstalledCertificateIds":
        if next(iter(get_validator(3, action, "1.6").iter_errors(response)), None) is not None:
            logger.warning("%s: GetInstalledCertificateIds answer not per its schema: not applied", cp.identity)
            return
        kind = payload["certificateType"]
        reported = response.get("certificateHashData") or []
        keep: list[int] = []
        for item in reported:
            row, _ = InstalledCertificate.objects.update_or_create(
                charge_point=cp,
                hash_algorithm=item["hashAlgorithm"],
                issuer_name_hash=item["issuerNameHash"].lower(),
                issuer_key_hash=item["issuerKeyHash"].lower(),
                serial_number=item["serialNumber"].lower().lstrip("0") or "0",
                defaults={"tenant_id": cp.tenant_id, "certificate_type": kind},
            )
            keep.append(row.pk)
        # what the charger does not report of this type is not installed (NotFound: none at all)
        InstalledCertificate.objects.filter(charge_point=cp, certificate_type=kind).exclude(pk__in=keep).delete()
