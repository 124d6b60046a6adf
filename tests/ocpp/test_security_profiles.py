"""OCPP 1.6 security profiles over a real TLS daphne endpoint (`ocpptls:`, apps/ocpp/tls.py) and behind a
TLS-terminating proxy: server and client certificates made by test CAs (cryptography) and by the tenant's own CA.
Profile 2 (Basic over TLS) and 3 (client certificate, CN = charge point id) connect; a charger below its profile,
with a wrong or missing certificate, or through an untrusted "proxy" is refused; SecurityProfile is never lowered,
and a raised profile takes effect once the charger connects with it."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import websockets
from cryptography.hazmat.primitives.asymmetric import ec

from apps.ocpp import tls
from apps.stations import certificates, security, services
from apps.stations.models import ChargePoint, Command
from tests.asgi_server import DaphneThread
from tests.ocpp.conftest import Charger, Station, auth_header, db
from tests.ocpp.pki import TestCa, key_pem, make_ca, make_csr, pem
from tests.ocpp.test_core import BOOT

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class TlsServer:
    url: str  # wss://127.0.0.1:<port>
    plain_url: str  # ws://127.0.0.1:<port> of the same daphne
    server_ca: TestCa


@pytest.fixture
async def tls_server(server: str, daphne: DaphneThread, tmp_path: Path) -> AsyncIterator[TlsServer]:
    """The process's daphne also listening on an `ocpptls:` endpoint, with a server certificate of a test CA."""
    server_ca = make_ca("Test server CA")
    cert, key = server_ca.issue("127.0.0.1", server_names=("127.0.0.1",))
    (tmp_path / "server.crt").write_text(pem(cert))
    (tmp_path / "server.key").write_text(key_pem(key))
    description = (
        f"ocpptls:port=0:interface=127.0.0.1:certKey={tmp_path / 'server.crt'}:privateKey={tmp_path / 'server.key'}"
    )

    async def listen() -> Any:
        import daphne.server as daphne_server

        # as daphne's command line does for `-e ocpptls:...` (the endpoint parser apps.ocpp.tls installs)
        endpoint = daphne_server.serverFromString(daphne.reactor, description)
        return await endpoint.listen(daphne.server.http_factory).asFuture(asyncio.get_running_loop())

    port = await daphne.run(listen)
    try:
        yield TlsServer(f"wss://127.0.0.1:{port.getHost().port}", server, server_ca)
    finally:

        async def stop() -> None:
            stopped = port.stopListening()
            if stopped is not None:
                await stopped.asFuture(asyncio.get_running_loop())

        await daphne.run(stop)


def client_context(tmp_path: Path, server_ca: TestCa, cert_key: tuple[str, str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=server_ca.pem)
    if cert_key is not None:
        (tmp_path / "client.crt").write_text(cert_key[0])
        (tmp_path / "client.key").write_text(cert_key[1])
        context.load_cert_chain(tmp_path / "client.crt", tmp_path / "client.key")
    return context


async def open_tls(
    url: str, identity: str, *, context: ssl.SSLContext | None, password: str | None = None, headers: Any = None
) -> Charger:
    ws = await websockets.connect(
        f"{url}/ocpp/{identity}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers={**(auth_header(identity, password) if password else {}), **(headers or {})},
        ssl=context,
        open_timeout=15,
    )
    charger = Charger(ws)
    charger.start()
    return charger


async def refused(url: str, identity: str, **kwargs: Any) -> tuple[int, str]:
    try:
        charger = await open_tls(url, identity, **kwargs)
    except websockets.InvalidStatus as error:
        return error.response.status_code, error.response.body.decode()
    await charger.close()
    raise AssertionError(f"{identity} was not refused")


async def set_profile(station: Station, profile: int) -> None:
    await db(ChargePoint.objects.filter(pk=station.charge_point.pk).update)(security_profile=profile)


def tenant_certificate(station: Station, common_name: str) -> tuple[str, str]:
    """A client certificate signed by the tenant's CA (what SignCertificate -> CertificateSigned gives a charger)."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca = security.certificate_authority_for(tenant_id=station.tenant.pk)
    signed = certificates.sign_csr(
        csr=certificates.load_csr(make_csr(common_name, key)),
        ca_certificate_pem=ca.certificate,
        ca_key_encrypted=ca.private_key_encrypted,
    )
    return signed.certificate_pem, key_pem(key)


async def test_profile_2_connects_over_tls_and_is_refused_without_it(
    station: Station, tls_server: TlsServer, tmp_path: Path
) -> None:
    await set_profile(station, 2)
    identity = station.charge_point.identity
    context = client_context(tmp_path, tls_server.server_ca)

    charger = await open_tls(tls_server.url, identity, context=context, password=station.password)
    boot = await charger.ok("BootNotification", BOOT)
    await charger.close()
    plain = await refused(tls_server.plain_url, identity, context=None, password=station.password)
    wrong_password = await refused(tls_server.url, identity, context=context, password="x" * 20)

    assert boot["status"] == "Accepted"
    assert plain == (403, f"Charge point '{identity}' uses security profile 2: connect over TLS (wss://).\n")
    assert wrong_password[0] == 401


async def test_profile_3_needs_a_client_certificate_of_the_tenant_ca_naming_the_charger(
    station: Station, tls_server: TlsServer, tmp_path: Path
) -> None:
    await set_profile(station, 3)
    identity = station.charge_point.identity
    good = await db(tenant_certificate)(station, identity)
    other_charger = await db(tenant_certificate)(station, "CP-OTHER")
    foreign_cert, foreign_key = make_ca("Someone else's CA").issue(identity, client=True)
    foreign = (pem(foreign_cert), key_pem(foreign_key))

    charger = await open_tls(tls_server.url, identity, context=client_context(tmp_path, tls_server.server_ca, good))
    boot = await charger.ok("BootNotification", BOOT)  # no password: the certificate authenticates
    await charger.close()
    answers = {
        name: await refused(
            tls_server.url,
            identity,
            context=client_context(tmp_path, tls_server.server_ca, cert_key),
            password=station.password,
        )
        for name, cert_key in (("none", None), ("other charger", other_charger), ("foreign CA", foreign))
    }

    assert boot["status"] == "Accepted"
    prefix = f"Charge point '{identity}' uses security profile 3: "
    assert answers == {
        "none": (403, prefix + "present its client certificate (TLS client authentication).\n"),
        "other charger": (
            403,
            prefix + "the client certificate's common name 'CP-OTHER' is not the charge point id.\n",
        ),
        "foreign CA": (
            403,
            prefix + "the client certificate is not issued by the operator's certificate authority.\n",
        ),
    }


async def test_security_profile_is_never_lowered_and_a_raised_one_applies_once_the_charger_uses_it(
    station: Station, tls_server: TlsServer, tmp_path: Path
) -> None:
    await set_profile(station, 2)
    identity = station.charge_point.identity
    basic_tls = client_context(tmp_path, tls_server.server_ca)
    charger = await open_tls(tls_server.url, identity, context=basic_tls, password=station.password)
    charger.answers["ChangeConfiguration"] = {"status": "Accepted"}
    await charger.ok("BootNotification", BOOT)
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)

    with pytest.raises(services.InvalidCommand) as lowered:
        await services.send_command_async(
            charge_point=cp, action="ChangeConfiguration", payload={"key": "SecurityProfile", "value": "1"}
        )
    raised = await services.send_command_async(
        charge_point=cp, action="ChangeConfiguration", payload={"key": "SecurityProfile", "value": "3"}
    )
    await charger.close()

    assert "never lowered" in lowered.value.message
    assert await db(Command.objects.filter(payload__value="1").exists)() is False
    assert raised.status == "accepted"
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    assert (cp.security_profile, cp.security_profile_pending) == (2, 3)

    # the charger falls back to profile 2 (its new one failed): still accepted, still pending
    fallback = await open_tls(tls_server.url, identity, context=basic_tls, password=station.password)
    await fallback.ok("Heartbeat", {})
    await fallback.close()
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    assert (cp.security_profile, cp.security_profile_pending) == (2, 3)

    # it connects with its certificate: profile 3 from now on, profile 2 refused
    cert = await db(tenant_certificate)(station, identity)
    upgraded = await open_tls(tls_server.url, identity, context=client_context(tmp_path, tls_server.server_ca, cert))
    await upgraded.ok("Heartbeat", {})
    await upgraded.close()
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    assert (cp.security_profile, cp.security_profile_pending) == (3, None)
    status, _ = await refused(tls_server.url, identity, context=basic_tls, password=station.password)
    assert status == 403


async def test_behind_a_trusted_proxy_the_forwarded_certificate_counts_and_from_anyone_else_it_does_not(
    station: Station, server: str, settings: Any
) -> None:
    await set_profile(station, 3)
    identity = station.charge_point.identity
    cert, _ = await db(tenant_certificate)(station, identity)
    headers = {"X-Forwarded-Proto": "https", "X-Client-Cert": quote(cert)}

    settings.OCPP_TRUSTED_PROXIES = []  # the test's plain socket is not a trusted proxy
    untrusted = await refused(server, identity, context=None, headers=headers)
    settings.OCPP_TRUSTED_PROXIES = ["127.0.0.0/8"]
    charger = await open_tls(server, identity, context=None, headers=headers)
    boot = await charger.ok("BootNotification", BOOT)
    await charger.close()
    no_cert = await refused(server, identity, context=None, headers={"X-Forwarded-Proto": "https"})

    assert untrusted == (403, f"Charge point '{identity}' uses security profile 3: connect over TLS (wss://).\n")
    assert boot["status"] == "Accepted"
    assert no_cert[0] == 403


def test_transport_security_reads_the_tls_extension_and_trusted_proxy_headers(settings: Any) -> None:
    settings.OCPP_TRUSTED_PROXIES = ["10.0.0.0/8"]
    direct = {"extensions": {"tls": {"client_cert_chain": ["PEM"]}}, "client": ["1.2.3.4", 1]}
    proxied = {"client": ["10.1.2.3", 1], "headers": [(b"x-forwarded-proto", b"wss"), (b"x-client-cert", b"A%20B")]}
    spoofed = {**proxied, "client": ["192.0.2.1", 1]}

    assert tls.transport_security(direct) == tls.TransportSecurity(True, "PEM", "daphne")
    assert tls.transport_security(proxied) == tls.TransportSecurity(True, "A B", "proxy")
    assert tls.transport_security(spoofed) == tls.TransportSecurity(False, None, "plain")
