"""Two instances of the platform, separate databases and processes, set up to roam with each other from the admin
alone (issue 15, "two platforms, one journey"): each tenant is CPO and eMSP towards the other."""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pypdfium2
import pytest
import requests

from apps.billing.models import InvoiceLine
from apps.ocpp.simulator import SimConfig, run_charger
from apps.roaming.models import PartnerStatus, RoamingPartner
from apps.sessions.models import PartnerCdr
from apps.tariffs import services as tariff_services
from tests.customers.factories import DriverFactory, TokenFactory
from tests.platforms import Platform, admin_messages, admin_post, peer_platform, platform_for_test_db
from tests.tenants.factories import MembershipFactory, TenantFactory, api_key_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ALL_MODULES = ["cdrs", "commands", "locations", "sessions", "tariffs", "tokens"]
SETUP_B = """
from apps.roaming import services
from apps.tenants.models import Role
from tests.tenants.factories import MembershipFactory, TenantFactory, api_key_for
tenant = TenantFactory(name="Nordlicht", slug="nordlicht", ocpi_country_code="NL", ocpi_party_id="NLT")
MembershipFactory(tenant=tenant, role=Role.ADMIN, user__username="nl-admin", user__password="nl-password")
partner, _ = services.partner_create(
    tenant=tenant, name="Voltnet", country_code="DE", party_id="VLT", our_roles=["CPO", "EMSP"],
    roles=["CPO", "EMSP"], enabled_modules=%(modules)r,
)
print("partner", partner.pk)
"""


@pytest.fixture
def platforms() -> Iterator[tuple[Platform, Platform]]:
    a, b = platform_for_test_db(), peer_platform()
    try:
        b.start()
        a.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


def register_both(a: Platform, b: Platform) -> RoamingPartner:
    """B (Nordlicht) and A (Voltnet) register with each other from their admins (token A issued in B's, the
    registration run from A's); both sides then know the other's endpoints and a token to call them. A's partner row."""
    # B (Nordlicht, NL*NLT) knows A as a partner: its operator issues a registration token from B's admin
    b_partner_id = int(re.search(r"partner (\d+)", b.python(SETUP_B % {"modules": ALL_MODULES})).group(1))  # type: ignore[union-attr]
    b_admin = b.admin("nl-admin", "nl-password")
    page = admin_post(
        b_admin,
        f"{b.url}/admin/roaming/roamingpartner/",
        {"action": "issue_token_a", "_selected_action": b_partner_id, "index": 0, "select_across": 0},
    )
    issued = [m for m in admin_messages(page.text) if "CREDENTIALS_TOKEN_A" in m]
    assert len(issued) == 1, admin_messages(page.text)
    token_a = issued[0].rsplit(": ", 1)[1]

    # A (Voltnet, DE*VLT) gets B's versions URL and token A out of band and registers from A's admin
    tenant = TenantFactory(name="Voltnet", slug="voltnet", ocpi_country_code="DE", ocpi_party_id="VLT")
    MembershipFactory(tenant=tenant, user__username="vlt-admin")
    # the password hashed as the platform hashes it (the test settings use a fast hasher the platform does not know)
    a.python(
        "from django.contrib.auth import get_user_model; u = get_user_model().objects.get(username='vlt-admin'); "
        "u.set_password('vlt-password'); u.save()"
    )
    from apps.roaming import services

    partner, _token = services.partner_create(
        tenant=tenant,
        name="Nordlicht",
        country_code="NL",
        party_id="NLT",
        our_roles=["CPO", "EMSP"],
        roles=["CPO", "EMSP"],
        enabled_modules=ALL_MODULES,
        versions_url=f"{b.url}/ocpi/versions",
        their_token=token_a,
    )
    a_admin = a.admin("vlt-admin", "vlt-password")
    page = admin_post(
        a_admin,
        f"{a.url}/admin/roaming/roamingpartner/",
        {"action": "register", "_selected_action": partner.pk, "index": 0, "select_across": 0},
    )
    assert any("register done" in m for m in admin_messages(page.text)), admin_messages(page.text)

    # both sides are registered, each knowing the other's endpoints and a token to call them with
    partner = RoamingPartner.objects.get(pk=partner.pk)
    assert partner.status == PartnerStatus.REGISTERED
    assert partner.their_token
    assert partner.their_token != token_a
    assert {e["identifier"] for e in partner.endpoints} >= {"credentials", "locations", "tokens"}
    on_b = b.python(
        "from apps.roaming.models import RoamingPartner as P; "
        f"p = P.objects.get(pk={b_partner_id}); print('RESULT', p.status, p.version, bool(p.their_token), "
        "sorted({e['identifier'] for e in p.endpoints}))"
    )
    status, version, has_token, identifiers = re.search(r"RESULT (\S+) (\S+) (\S+) (.*)", on_b).groups()  # type: ignore[union-attr]
    assert (status, version, has_token) == ("registered", "2.2.1", "True")
    assert {"credentials", "locations", "tokens"} <= set(ast.literal_eval(identifiers))
    return partner


# --------------------------------------------------------------------------- the journey (issue 15 "Done when")

SETUP_B_NETWORK = """
import json
from decimal import Decimal
from apps.stations import services as station_services
from apps.stations.models import Connector
from apps.tariffs import services as tariff_services
from apps.tenants.models import Tenant
from tests.stations.factories import ConnectorFactory, EvseFactory, LocationFactory
tenant = Tenant.objects.get(slug="nordlicht")
location = LocationFactory(
    tenant=tenant, ocpi_id="NLT-UTRECHT", name="Nordlicht Hub Utrecht", address="Stationsplein 12",
    postal_code="3511 ED", city="Utrecht", country="NL", latitude=Decimal("52.089400"), longitude=Decimal("5.110200"),
    timezone="Europe/Amsterdam",
)
cp, password = station_services.charge_point_register(
    tenant=tenant, identity="NLT-CP-1", location=location, heartbeat_interval=60
)
evse = EvseFactory(charge_point=cp, connector_id=1, evse_uid="NL*NLT*E1*1")
ConnectorFactory(evse=evse, standard=Connector.Standard.IEC_62196_T2, power_type=Connector.PowerType.AC_3_PHASE,
                 max_voltage=230, max_amperage=32)
tariff = tariff_services.tariff_create(tenant=tenant, ocpi_id="NLT-AC", currency="EUR", elements=%(elements)r)
tariff_services.tariff_assignment_create(tenant=tenant, tariff=tariff)
print("RESULT", json.dumps({"password": password, "evse": evse.pk}))
"""
# Nordlicht's price: 0.40 EUR/kWh and 0.50 EUR per session excl. VAT, 21 % VAT (the Netherlands)
B_ELEMENTS = [
    {
        "price_components": [
            {"type": "ENERGY", "price": "0.40", "vat": "21", "step_size": 1},
            {"type": "FLAT", "price": "0.50", "vat": "21", "step_size": 1},
        ]
    }
]
B_CDR = """
import json
from apps.sessions.models import Cdr
cdr = Cdr.objects.select_related("session").get(session__id_tag=%(uid)r)
print("RESULT", json.dumps({
    "id": cdr.ocpi_id, "kwh": str(cdr.total_energy), "wh": cdr.energy_wh, "excl": str(cdr.total_cost["excl_vat"]),
    "incl": str(cdr.total_cost["incl_vat"]),
}))
"""
B_STATUS_RECEIVED = """
from apps.stations.models import Evse
evse = Evse.objects.get(pk=%(pk)d)
print("RESULT", evse.status, evse.status_received_at.isoformat())
"""


def result(output: str) -> str:
    """What a `Platform.python` script printed after RESULT."""
    found = re.search(r"^RESULT (.*)$", output, re.M)
    assert found, output
    return found.group(1)


class Charger:
    """apps.ocpp.simulator's charger on an event loop of its own thread, against another platform's daphne: it
    charges only when told (RemoteStartTransaction), at 22 kW with a meter value every second."""

    def __init__(self, identity: str, url: str, password: str) -> None:
        self.config = SimConfig(
            url=url, password=password, connectors=1, heartbeat=30, idle_seconds=(3600.0, 3600.0),
            session_seconds=(3600.0, 3600.0), meter_interval=1.0, power_w=22_000,
        )  # fmt: skip
        self.identity = identity
        self.loop = asyncio.new_event_loop()
        self.stopping = asyncio.Event()
        self.thread = threading.Thread(target=self._run, name=f"sim-{identity}", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(run_charger(self.identity, self.config, self.stopping))
        self.loop.close()

    def start(self) -> Charger:
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stopping.set)
            self.thread.join(30)


def poll(probe: Callable[[], Any], what: str, timeout: float = 90, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_two_platforms_one_journey(platforms: tuple[Platform, Platform]) -> None:
    """Handshake from the admin; A's driver finds B's station with B's live status and A's retail price, starts it
    by QR, B's simulated OCPP charger charges, A's driver sees live energy, stops; B sends the CDR, A invoices it;
    both totals are what each tariff gives, to the cent; a status change on B's charger is in A's search within 1 s."""
    a, b = platforms
    partner = register_both(a, b)
    network = json.loads(result(b.python(SETUP_B_NETWORK % {"elements": B_ELEMENTS})))
    tenant = partner.tenant
    # A's retail rule for Nordlicht's stations: the CPO's price + 10 %, A's 19 % VAT (as an operator sets it up)
    tariff_services.roaming_retail_rule_create(
        tenant=tenant, partner=partner, mode="markup", markup_percent=Decimal("10"), vat_rate=Decimal("19")
    )
    driver = DriverFactory(tenant=tenant, first_name="Jana", last_name="Roth")
    token = TokenFactory(tenant=tenant, driver=driver, uid="VLT-APP-7F3A9C")
    _, driver_key = api_key_for(tenant, ["driver:read", "driver:write"])
    _, finance_key = api_key_for(tenant, ["billing:read"])
    app = requests.Session()
    app.headers["Authorization"] = f"Api-Key {driver_key}"

    charger = Charger("NLT-CP-1", f"ws://127.0.0.1:{b.web.port}", network["password"]).start()  # type: ignore[union-attr]
    try:
        # B pushed its location and tariff after the registration, and its charger's status once it booted
        def station() -> dict[str, Any] | None:
            page = app.get(
                f"{a.url}/api/v1/driver/stations/",
                params={"lat": "52.09", "lon": "5.11", "radius_km": "5", "driver": driver.pk},
                timeout=10,
            )
            assert page.status_code == 200, page.text
            return next((s for s in page.json()["results"] if s["network"] == "partner"), None)

        found = poll(lambda: (s := station()) and s["evses"][0]["status"] == "AVAILABLE" and s, "B's station")
        assert (found["name"], found["operator"]["party"]) == ("Nordlicht Hub Utrecht", "NL*NLT")
        (evse,) = found["evses"]
        assert evse["evse_id"] == "NL*NLT*E1*1"
        assert evse["price"]["tariff_id"] == "NLT-AC"
        assert evse["price"]["retail_mode"] == "markup"
        assert evse["price"]["per_kwh"] == {"excl_vat": "0.4400", "incl_vat": "0.5236"}
        assert evse["price"]["per_session"] == {"excl_vat": "0.5500", "incl_vat": "0.6545"}

        # start by scanning the QR code on B's charger
        started = app.post(
            f"{a.url}/api/v1/driver/partner-sessions/",
            json={"driver": driver.pk, "evse_id": "https://qr.nordlicht.example/NL*NLT*E1*1"},
            timeout=30,
        )
        assert started.status_code == 202, started.text
        session_url = f"{a.url}/api/v1/driver/partner-sessions/{started.json()['id']}/"

        # B's charger reports Charging: in A's driver search within 1 s of B receiving it
        poll(lambda: station()["evses"][0]["status"] == "CHARGING", "CHARGING in A's search", every=0.02)  # type: ignore[index]
        seen = dt.datetime.now(dt.UTC)
        status, received = result(b.python(B_STATUS_RECEIVED % {"pk": network["evse"]})).split()
        assert status == "Charging"
        latency = (seen - dt.datetime.fromisoformat(received)).total_seconds()
        assert latency < 1.0, f"{latency:.3f} s from B's StatusNotification to A's driver search"

        # live energy from B's session PATCHes
        live = poll(lambda: (s := app.get(session_url, timeout=10).json())["state"] == "ACTIVE" and s["kwh"] and s,
                    "live energy")  # fmt: skip
        later = poll(lambda: (s := app.get(session_url, timeout=10).json())["kwh"] > live["kwh"] and s, "more energy")
        assert later["evse_uid"] == str(network["evse"])

        stopped = app.post(f"{session_url}stop/", json={}, timeout=30)
        assert stopped.status_code == 202, stopped.text
        poll(lambda: app.get(session_url, timeout=10).json()["state"] == "COMPLETED", "the completed session")

        # B's CDR at B's tariff, to the cent
        cdr_b = poll(lambda: PartnerCdr.objects.filter(tenant=tenant).first(), "B's CDR at A")
        b_cdr = json.loads(result(b.python(B_CDR % {"uid": token.uid})))
        kwh = Decimal(b_cdr["wh"]) / 1000
        assert kwh > 0
        assert Decimal(b_cdr["kwh"]) == kwh
        b_excl = cents(kwh * Decimal("0.40") + Decimal("0.50"))
        assert Decimal(b_cdr["excl"]) == b_excl
        # each dimension's cost rounded once from its exact price (not excl. VAT rounded, then VAT on it), and the
        # total is their sum, so that the CDR's total_energy_cost + total_fixed_cost is its total_cost
        assert Decimal(b_cdr["incl"]) == cents(kwh * Decimal("0.40") * Decimal("1.21")) + cents(
            Decimal("0.50") * Decimal("1.21")
        )
        assert (cdr_b.ocpi_id, cdr_b.total_energy, cdr_b.total_cost_excl_vat) == (b_cdr["id"], kwh, b_excl)
        assert poll(lambda: PartnerCdr.objects.get(pk=cdr_b.pk).review, "the reconciliation") == "ok"

        # A's receipt at A's retail price: B's cost + 10 %, A's VAT
        line = poll(
            lambda: InvoiceLine.objects.filter(partner_cdr_id=cdr_b.pk).select_related("invoice").first(), "receipt"
        )
        a_excl = cents(b_excl * Decimal("1.10"))
        a_vat = cents(a_excl * Decimal("0.19"))
        receipt = line.invoice
        assert (receipt.kind, receipt.driver_id) == ("receipt", driver.pk)
        assert (line.cpo_cost_excl_vat, line.total_excl_vat, line.total_vat) == (b_excl, a_excl, a_vat)
        assert (receipt.total_excl_vat, receipt.total_vat, receipt.total_incl_vat) == (a_excl, a_vat, a_excl + a_vat)
        pdf = requests.get(
            f"{a.url}/api/v1/invoices/{receipt.pk}/pdf/",
            headers={"Authorization": f"Api-Key {finance_key}"},
            timeout=60,
        )
        assert pdf.status_code == 200, pdf.text
        text = " ".join(pypdfium2.PdfDocument(pdf.content)[0].get_textpage().get_text_range().split())
        assert receipt.number in text
        assert "Nordlicht Hub Utrecht" in text
        assert "Stationsplein 12" in text
        german = {value: f"{value:.2f}".replace(".", ",") for value in (a_excl, a_vat, a_excl + a_vat)}
        assert f"Summe netto {german[a_excl]} EUR" in text  # the tenant's language is German
        assert f"MwSt. 19 % auf {german[a_excl]} {german[a_vat]} EUR" in text
        assert f"Bitte überweisen Sie {german[a_excl + a_vat]} EUR" in text
    finally:
        charger.stop()
