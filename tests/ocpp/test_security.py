"""OCPP 1.6 security extension (whitepaper edition 3), charger -> central system over a real WebSocket under
daphne: security events (critical ones alert), SignCertificate -> CertificateSigned signed by the tenant's CA,
signed firmware and log status; malformed payloads get the 1.6 CallError and change nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apps.analytics.models import Alert, AlertKind
from apps.core import outbox
from apps.stations.models import (
    CertificateAuthority,
    CertificateSigningRequest,
    ChargePoint,
    Command,
    InstalledCertificate,
    SecurityEvent,
)
from tests.analytics.factories import AlertRuleFactory
from tests.ocpp.conftest import ConnectCharger, Station, db, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


def make_csr(common_name: str, key: ec.EllipticCurvePrivateKey | None = None) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Voltnet"),
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                ]
            )
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


async def booted(station: Station, connect: ConnectCharger, **answers: Any) -> Any:
    charger = await connect(station.charge_point.identity, station.password)
    charger.answers.update(answers)
    await charger.ok("BootNotification", BOOT)
    return charger


def snapshot(station: Station) -> dict[str, Any]:
    cp = ChargePoint.objects.get(pk=station.charge_point.pk)
    return {
        "events": list(SecurityEvent.objects.values_list("type", flat=True)),
        "csrs": CertificateSigningRequest.objects.count(),
        "signed_firmware_status": cp.signed_firmware_status,
        "log_status": cp.log_status,
        "commands": Command.objects.count(),
    }


# --------------------------------------------------------------------------- SecurityEventNotification


async def test_security_events_are_stored_and_critical_ones_raise_an_alert(
    station: Station, connect: ConnectCharger
) -> None:
    await db(AlertRuleFactory)(tenant=station.tenant, kind=AlertKind.SECURITY_EVENT)
    charger = await booted(station, connect)

    tamper = await charger.call(
        "SecurityEventNotification",
        {"type": "TamperDetectionActivated", "timestamp": "2030-01-01T10:00:00Z", "techInfo": "lid opened"},
    )
    invalid = await charger.call(
        "SecurityEventNotification", {"type": "InvalidMessages", "timestamp": "2030-01-01T10:01:00Z"}
    )
    await db(outbox.deliver_pending)()

    assert tamper[0] == 3
    assert tamper[2] == {}
    assert invalid[0] == 3
    assert invalid[2] == {}
    rows = await db(lambda: list(SecurityEvent.objects.order_by("timestamp").values()))()
    assert [(r["type"], r["critical"], r["tech_info"], r["charge_point_id"], r["tenant_id"]) for r in rows] == [
        ("TamperDetectionActivated", True, "lid opened", station.charge_point.pk, station.tenant.pk),
        ("InvalidMessages", False, "", station.charge_point.pk, station.tenant.pk),
    ]
    assert rows[0]["timestamp"] == dt.datetime(2030, 1, 1, 10, 0, tzinfo=dt.UTC)
    alerts = await db(lambda: list(Alert.objects.values_list("kind", "subject", "message", "charge_point_id")))()
    assert alerts == [
        (
            "security_event",
            f"cp:{station.charge_point.pk}/security/TamperDetectionActivated",
            "Security event TamperDetectionActivated: lid opened",
            station.charge_point.pk,
        )
    ]


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        ("SecurityEventNotification", {"timestamp": "2030-01-01T10:00:00Z"}, "OccurenceConstraintViolation"),
        (
            "SecurityEventNotification",
            {"type": "X" * 51, "timestamp": "2030-01-01T10:00:00Z"},
            "TypeConstraintViolation",
        ),
        (
            "SecurityEventNotification",
            {"type": "ResetOrReboot", "timestamp": "2030-01-01T10:00:00Z", "extra": 1},
            "FormationViolation",
        ),
        (
            "SecurityEventNotification",
            {"type": "ResetOrReboot", "timestamp": "yesterday"},
            "PropertyConstraintViolation",
        ),
        ("SignCertificate", {"csr": 42}, "TypeConstraintViolation"),
        ("SignCertificate", {}, "OccurenceConstraintViolation"),
        ("SignCertificate", {"csr": "x" * 5501}, "TypeConstraintViolation"),
        ("SignedFirmwareStatusNotification", {"status": "Flashing"}, "PropertyConstraintViolation"),
        ("SignedFirmwareStatusNotification", {"status": "Installed", "requestId": "7"}, "TypeConstraintViolation"),
        ("LogStatusNotification", {"status": "Done"}, "PropertyConstraintViolation"),
        ("LogStatusNotification", {"requestId": 1}, "OccurenceConstraintViolation"),
    ],
)
async def test_malformed_security_messages_get_their_call_error_and_change_nothing(
    station: Station, connect: ConnectCharger, action: str, payload: dict[str, Any], code: str
) -> None:
    charger = await booted(station, connect)
    before = await db(snapshot)(station)

    answer = await charger.call(action, payload)

    assert (answer[0], answer[2]) == (4, code), answer
    assert await db(snapshot)(station) == before
    assert (await charger.call("Heartbeat", {}))[0] == 3  # the socket stays open


# --------------------------------------------------------------------------- firmware and log status


async def test_signed_firmware_and_log_status_are_stored(station: Station, connect: ConnectCharger) -> None:
    charger = await booted(station, connect)

    assert await charger.ok("SignedFirmwareStatusNotification", {"status": "InvalidSignature", "requestId": 7}) == {}
    assert await charger.ok("LogStatusNotification", {"status": "Uploaded", "requestId": 9}) == {}

    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    assert (cp.signed_firmware_status, cp.signed_firmware_request_id) == ("InvalidSignature", 7)
    assert (cp.log_status, cp.log_request_id) == ("Uploaded", 9)
    assert cp.signed_firmware_status_at is not None
    assert cp.log_status_at is not None


# --------------------------------------------------------------------------- SignCertificate -> CertificateSigned


async def test_sign_certificate_is_signed_by_the_tenant_ca_and_sent_back(
    station: Station, connect: ConnectCharger
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    charger = await booted(station, connect, CertificateSigned={"status": "Accepted"})

    answer = await charger.ok("SignCertificate", {"csr": make_csr(station.charge_point.identity, key)})

    assert answer == {"status": "Accepted"}

    async def chain_received() -> bool:
        return any(call[2] == "CertificateSigned" for call in charger.received_calls)

    await wait_for(chain_received)

    async def installed() -> bool:
        return await db(
            CertificateSigningRequest.objects.filter(status=CertificateSigningRequest.Status.INSTALLED).exists
        )()

    await wait_for(installed)
    chain_pem = next(c for c in charger.received_calls if c[2] == "CertificateSigned")[3]["certificateChain"]
    leaf, ca_cert = x509.load_pem_x509_certificates(chain_pem.encode())
    ca = await db(CertificateAuthority.objects.get)(tenant=station.tenant)
    assert ca_cert.public_bytes(serialization.Encoding.PEM).decode() == ca.certificate
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == station.charge_point.identity
    assert leaf.public_key() == key.public_key()
    leaf.verify_directly_issued_by(ca_cert)  # raises unless the tenant's CA signed it
    assert "PRIVATE KEY" not in chain_pem

    request = await db(CertificateSigningRequest.objects.get)()
    command = await db(Command.objects.get)(action="CertificateSigned")
    assert (request.status, request.command_id, command.status, command.source) == (
        "installed",
        command.pk,
        "accepted",
        "sign_certificate",
    )
    assert request.not_after == leaf.not_valid_after_utc
    installed_rows = await db(lambda: list(InstalledCertificate.objects.values()))()
    assert [(r["certificate_type"], r["serial_number"], r["not_after"]) for r in installed_rows] == [
        ("ChargePointCertificate", format(leaf.serial_number, "x"), leaf.not_valid_after_utc)
    ]


async def test_sign_certificate_refused_when_cn_is_not_the_charge_point_id_or_csr_is_garbage(
    station: Station, connect: ConnectCharger
) -> None:
    charger = await booted(station, connect, CertificateSigned={"status": "Accepted"})

    other = await charger.ok("SignCertificate", {"csr": make_csr("CP-SOMEONE-ELSE")})
    garbage = await charger.ok("SignCertificate", {"csr": "-----BEGIN CERTIFICATE REQUEST-----\nnope\n"})

    assert other == {"status": "Rejected"}
    assert garbage == {"status": "Rejected"}
    rows = await db(lambda: list(CertificateSigningRequest.objects.order_by("id").values("status", "detail")))()
    assert [r["status"] for r in rows] == ["rejected", "rejected"]
    assert "'CP-SOMEONE-ELSE' is not the charge point id 'CP-TEST-1'" in rows[0]["detail"]
    assert "Not a PEM-encoded PKCS#10" in rows[1]["detail"]
    await charger.ok("Heartbeat", {})
    assert not [c for c in charger.received_calls if c[2] == "CertificateSigned"]
    assert await db(Command.objects.count)() == 0
    assert await db(CertificateAuthority.objects.count)() == 0
