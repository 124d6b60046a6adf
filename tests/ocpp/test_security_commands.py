"""OCPP 1.6 security extension, central system -> charger, through the API (real HTTP) and `send_command` to a
charger on a real WebSocket under daphne: certificates installed, listed and deleted (and what the platform then
knows of them), GetLog uploaded to the platform with its LogStatusNotification, SignedUpdateFirmware with its
status notifications, ExtendedTriggerMessage SignChargePointCertificate leading to a signed certificate, and
refused payloads (nothing recorded or sent)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests
from asgiref.sync import sync_to_async
from cryptography import x509
from django.conf import settings

from apps.analytics import rules
from apps.analytics.models import Alert, AlertKind
from apps.stations import certificates
from apps.stations.models import (
    CertificateSigningRequest,
    ChargePoint,
    Command,
    DiagnosticsUpload,
    InstalledCertificate,
)
from tests.analytics.factories import AlertRuleFactory
from tests.ocpp.conftest import ConnectCharger, Station, db, wait_for
from tests.ocpp.http import api_for, flat
from tests.ocpp.pki import make_ca, make_csr
from tests.ocpp.test_core import BOOT
from tests.stations.factories import InstalledCertificateFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def online(station: Station, connect: ConnectCharger, **answers: Any) -> Any:
    charger = await connect(station.charge_point.identity, station.password)
    charger.answers.update(answers)
    await charger.ok("BootNotification", BOOT)
    return charger


def commands_url(station: Station, slug: str) -> str:
    return f"/charge-points/{station.charge_point.pk}/commands/{slug}/"


async def installed(station: Station) -> list[tuple[str, str, str]]:
    return await db(
        lambda: list(
            InstalledCertificate.objects.filter(charge_point=station.charge_point)
            .order_by("serial_number")
            .values_list("certificate_type", "serial_number", "source")
        )
    )()


async def test_certificates_installed_listed_and_deleted(
    station: Station, connect: ConnectCharger, server: str
) -> None:
    root, manufacturer = make_ca("CSMS Root"), make_ca("Manufacturer Root")
    root_hash = certificates.hash_data(root.cert).wire()
    listed: dict[str, Any] = {"status": "Accepted", "certificateHashData": [root_hash]}
    charger = await online(
        station,
        connect,
        InstallCertificate={"status": "Accepted"},
        GetInstalledCertificateIds=lambda payload: (
            listed if payload["certificateType"] == "CentralSystemRootCertificate" else {"status": "NotFound"}
        ),
        DeleteCertificate={"status": "Accepted"},
    )
    api = await api_for(server, station.tenant)

    # installed: the platform knows the certificate, its subject and expiry
    status, body = await api.post(
        commands_url(station, "install-certificate"),
        {"certificateType": "CentralSystemRootCertificate", "certificate": root.pem},
    )
    assert (status, body["status"]) == (200, "accepted"), body
    row = await db(InstalledCertificate.objects.get)(charge_point=station.charge_point)
    assert (row.certificate_type, row.serial_number, row.not_after, row.certificate) == (
        "CentralSystemRootCertificate",
        root_hash["serialNumber"],
        root.cert.not_valid_after_utc,
        root.pem,
    )
    assert row.subject == "CN=CSMS Root,O=Test"
    await db(InstalledCertificateFactory)(
        charge_point=station.charge_point, certificate_type="ManufacturerRootCertificate", serial_number="99"
    )

    # listed: the charger's answer replaces what the platform believed of that type (NotFound: none of it)
    status, body = await api.post(
        commands_url(station, "get-installed-certificate-ids"), {"certificateType": "ManufacturerRootCertificate"}
    )
    assert (status, body["status"], body["response"]) == (200, "accepted", {"status": "NotFound"}), body
    assert await installed(station) == [
        ("CentralSystemRootCertificate", root_hash["serialNumber"], "InstallCertificate")
    ]
    status, body = await api.post(
        commands_url(station, "get-installed-certificate-ids"), {"certificateType": "CentralSystemRootCertificate"}
    )
    assert (status, body["status"]) == (200, "accepted"), body

    # visible per charger in the API
    status, body = await api.request("GET", f"/installed-certificates/?charge_point={station.charge_point.pk}")
    assert status == 200, body
    assert [(r["certificate_type"], r["serial_number"]) for r in body["results"]] == [
        ("CentralSystemRootCertificate", root_hash["serialNumber"])
    ]

    # deleted
    status, body = await api.post(commands_url(station, "delete-certificate"), {"certificateHashData": root_hash})
    assert (status, body["status"]) == (200, "accepted"), body
    assert await installed(station) == []
    assert [c[2] for c in charger.received_calls] == [
        "InstallCertificate",
        "GetInstalledCertificateIds",
        "GetInstalledCertificateIds",
        "DeleteCertificate",
    ]
    assert manufacturer.pem not in str(charger.received_calls)


@pytest.mark.parametrize(
    ("slug", "payload", "where"),
    [
        (
            "install-certificate",
            {"certificateType": "CentralSystemRootCertificate", "certificate": "not a certificate"},
            "certificate",
        ),
        ("install-certificate", {"certificateType": "CentralSystemRootCertificate"}, "certificate"),
        ("install-certificate", {"certificateType": "V2GRootCertificate", "certificate": "x"}, "certificateType"),
        ("certificate-signed", {"certificateChain": "-----BEGIN CERTIFICATE-----\nAAAA\n"}, "certificateChain"),
        (
            "delete-certificate",
            {
                "certificateHashData": {
                    "hashAlgorithm": "MD5",
                    "issuerNameHash": "a",
                    "issuerKeyHash": "b",
                    "serialNumber": "1",
                }
            },
            "certificateHashData.hashAlgorithm",
        ),
        ("get-installed-certificate-ids", {}, "certificateType"),
        ("extended-trigger-message", {"requestedMessage": "Heartbeat", "connectorId": 1}, "connectorId"),
        ("extended-trigger-message", {"requestedMessage": "DiagnosticsStatusNotification"}, "requestedMessage"),
        ("get-log", {"logType": "SecurityLog"}, "requestId"),
        ("get-log", {"logType": "SecurityLog", "requestId": 2**31}, "requestId"),  # beyond a charger's int32
        (
            "get-log",
            {
                "logType": "DiagnosticsLog",
                "requestId": 1,
                "log": {"oldestTimestamp": "2030-01-02T00:00:00Z", "latestTimestamp": "2030-01-01T00:00:00Z"},
            },
            "log.latestTimestamp",
        ),
        (
            "signed-update-firmware",
            {
                "requestId": 1,
                "firmware": {
                    "location": "https://fw.example.com/a.bin",
                    "retrieveDateTime": "2030-01-01T00:00:00Z",
                    "signingCertificate": "nope",
                    "signature": "not base64!",
                },
            },
            "firmware.signingCertificate",
        ),
        (
            "signed-update-firmware",
            {"requestId": 1, "firmware": {"location": "https://fw.example.com/a.bin"}},
            "firmware.retrieveDateTime",
        ),
    ],
)
async def test_wrong_security_commands_are_refused_before_anything_is_sent(
    station: Station, connect: ConnectCharger, server: str, slug: str, payload: dict[str, Any], where: str
) -> None:
    charger = await online(station, connect)
    api = await api_for(server, station.tenant)

    status, body = await api.post(commands_url(station, slug), payload)

    assert (status, body["code"]) == (400, "validation_error"), body
    assert where in flat(body["fields"]), body
    assert charger.received_calls == []
    assert await db(Command.objects.count)() == 0
    assert await db(DiagnosticsUpload.objects.count)() == 0
    assert await installed(station) == []


async def test_signed_firmware_signature_must_be_base64(station: Station, connect: ConnectCharger, server: str) -> None:
    await online(station, connect)
    api = await api_for(server, station.tenant)
    payload = {
        "requestId": 1,
        "firmware": {
            "location": "https://fw.example.com/a.bin",
            "retrieveDateTime": "2030-01-01T00:00:00Z",
            "signingCertificate": make_ca("Firmware signer").pem,
            "signature": "not base64!",
        },
    }

    status, body = await api.post(commands_url(station, "signed-update-firmware"), payload)

    assert (status, list(flat(body["fields"]))) == (400, ["firmware.signature"]), body


async def test_get_log_uploads_to_the_platform_and_reports_its_status(
    station: Station, connect: ConnectCharger, server: str
) -> None:
    charger = await online(station, connect, GetLog={"status": "Accepted", "filename": "security.log"})
    api = await api_for(server, station.tenant)

    status, body = await api.post(
        commands_url(station, "get-log"), {"logType": "SecurityLog", "requestId": 12, "log": {}}
    )

    assert (status, body["status"]) == (200, "accepted"), body
    [(action, sent)] = [(frame[2], frame[3]) for frame in charger.received_calls]
    location = sent["log"]["remoteLocation"]
    assert (action, sent["logType"], sent["requestId"]) == ("GetLog", "SecurityLog", 12)
    assert location.startswith(f"{settings.OCPP_FILES_BASE_URL.rstrip('/')}/ocpp-files/diagnostics/")
    upload_url = server.replace("ws://", "http://") + location.removeprefix(settings.OCPP_FILES_BASE_URL.rstrip("/"))

    await charger.ok("LogStatusNotification", {"status": "Uploading", "requestId": 12})
    put = await sync_to_async(requests.put, thread_sensitive=False)(
        upload_url + "security.log", data=b"SECURITY LOG", timeout=30
    )
    await charger.ok("LogStatusNotification", {"status": "Uploaded", "requestId": 12})

    assert put.status_code == 201, put.text
    upload = await db(DiagnosticsUpload.objects.get)()
    assert (upload.log_type, upload.request_id, upload.file_name, upload.size, upload.command_id) == (
        "SecurityLog",
        12,
        "security.log",
        12,
        body["id"],
    )
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    assert (cp.log_status, cp.log_request_id) == ("Uploaded", 12)


async def test_signed_update_firmware_and_its_status_notifications(
    station: Station, connect: ConnectCharger, server: str
) -> None:
    signer = make_ca("Firmware signer")
    charger = await online(station, connect, SignedUpdateFirmware={"status": "Accepted"})
    api = await api_for(server, station.tenant)
    firmware = {
        "location": "https://fw.example.com/eve-7.0.bin",
        "retrieveDateTime": "2030-01-01T00:00:00Z",
        "signingCertificate": signer.pem,
        "signature": "c2lnbmF0dXJl",
    }

    status, body = await api.post(
        commands_url(station, "signed-update-firmware"), {"requestId": 5, "firmware": firmware}
    )
    statuses = ["Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]
    for reported in statuses:
        assert await charger.ok("SignedFirmwareStatusNotification", {"status": reported, "requestId": 5}) == {}

    assert (status, body["status"]) == (200, "accepted"), body
    assert charger.received_calls[0][2:] == ["SignedUpdateFirmware", {"requestId": 5, "firmware": firmware}]
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    assert (cp.signed_firmware_status, cp.signed_firmware_request_id) == ("Installed", 5)


async def test_extended_trigger_sign_certificate_ends_with_a_signed_installed_certificate(
    station: Station, connect: ConnectCharger, server: str
) -> None:
    """The whitepaper's A02 flow: the CSMS triggers SignChargePointCertificate, the charger sends its CSR, the CSMS
    signs it with the tenant's CA and sends CertificateSigned."""
    charger = await online(station, connect, CertificateSigned={"status": "Accepted"})
    sign_answers: list[list[Any]] = []

    def trigger(payload: dict[str, Any]) -> dict[str, Any]:
        assert payload == {"requestedMessage": "SignChargePointCertificate"}
        return {"status": "Accepted"}

    charger.answers["ExtendedTriggerMessage"] = trigger
    api = await api_for(server, station.tenant)

    status, body = await api.post(
        commands_url(station, "extended-trigger-message"), {"requestedMessage": "SignChargePointCertificate"}
    )
    assert (status, body["status"]) == (200, "accepted"), body
    sign_answers.append(await charger.call("SignCertificate", {"csr": make_csr(station.charge_point.identity)}))

    async def done() -> bool:
        return await db(
            CertificateSigningRequest.objects.filter(status=CertificateSigningRequest.Status.INSTALLED).exists
        )()

    await wait_for(done)
    assert sign_answers[0][2] == {"status": "Accepted"}
    chain = next(c for c in charger.received_calls if c[2] == "CertificateSigned")[3]["certificateChain"]
    leaf = x509.load_pem_x509_certificates(chain.encode())[0]
    assert await installed(station) == [
        ("ChargePointCertificate", format(leaf.serial_number, "x"), "CertificateSigned")
    ]

    # the tenant's CA is visible through the API, its key is not
    status, body = await api.request("GET", "/certificate-authorities/")
    assert status == 200, body
    [ca] = body["results"]
    assert set(ca) == {"id", "tenant", "certificate", "not_after", "created_at"}
    assert "PRIVATE" not in str(body)
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca["certificate"].encode()))

    status, body = await api.request("GET", f"/certificate-signing-requests/?charge_point={station.charge_point.pk}")
    assert (status, [r["status"] for r in body["results"]]) == (200, ["installed"]), body


async def test_security_events_are_listed_in_the_api(station: Station, connect: ConnectCharger, server: str) -> None:
    charger = await online(station, connect)
    await charger.ok("SecurityEventNotification", {"type": "ResetOrReboot", "timestamp": "2030-01-01T00:00:00Z"})
    await charger.ok("SecurityEventNotification", {"type": "InvalidTLSVersion", "timestamp": "2030-01-01T00:01:00Z"})
    api = await api_for(server, station.tenant)

    status, body = await api.request("GET", "/security-events/?critical=true")

    assert status == 200, body
    assert [(r["type"], r["critical"], r["charge_point"]) for r in body["results"]] == [
        ("ResetOrReboot", True, station.charge_point.pk)
    ]


def test_certificates_expiring_soon_raise_an_alert(station: Station) -> None:
    AlertRuleFactory(tenant=station.tenant, kind=AlertKind.CERTIFICATE_EXPIRING, threshold_minutes=0)
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    soon = InstalledCertificateFactory(charge_point=station.charge_point, not_after=now + dt.timedelta(days=10))
    InstalledCertificateFactory(charge_point=station.charge_point, not_after=now + dt.timedelta(days=90))

    rules.alerts_evaluate(now=now)

    assert list(Alert.objects.values_list("kind", "subject", "charge_point_id", "status")) == [
        (
            "certificate_expiring",
            f"cp:{station.charge_point.pk}/cert/{soon.serial_number}",
            station.charge_point.pk,
            "open",
        )
    ]
    soon.delete()  # the certificate was replaced (DeleteCertificate accepted)
    rules.alerts_evaluate(now=now)
    assert list(Alert.objects.values_list("status", flat=True)) == ["resolved"]
