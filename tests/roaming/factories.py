from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from apps.customers.models import TokenSource
from apps.roaming import services
from apps.roaming.models import EmspAuthorization, PartnerReservation, PartnerToken, RoamingCommand, RoamingPartner
from apps.tenants.models import Tenant
from tests.charging.factories import ReservationFactory
from tests.customers.factories import TokenFactory
from tests.stations.factories import ChargePointFactory

_counter = iter(range(10**6))


def partner_for(tenant: Tenant, **fields: Any) -> tuple[RoamingPartner, str]:
    """A pending partner of `tenant` and its plain CREDENTIALS_TOKEN_A (through the service, as the API does)."""
    n = next(_counter)
    fields.setdefault("name", f"Partner {n}")
    fields.setdefault("country_code", "NL")
    fields.setdefault("party_id", f"P{n % 100:02d}")
    fields.setdefault("roles", ["EMSP"])
    fields.setdefault("our_country_code", tenant.ocpi_country_code or "DE")
    fields.setdefault("our_party_id", tenant.ocpi_party_id or "OWN")
    return services.partner_create(tenant=tenant, **fields)


RECEIVER_MODULES = ["locations", "tokens", "commands", "chargingprofiles"]


def registered(ocpi_base: str, sim: Any, tenant: Tenant, modules: list[str] | None = None) -> RoamingPartner:
    """The partner simulator registered with us (token A -> B -> C) as the tenant's partner of its party, with the
    CPO Receiver modules enabled."""
    partner, token_a = partner_for(
        tenant,
        name="Sim eMSP",
        country_code=sim.country_code,
        party_id=sim.party_id,
        enabled_modules=modules or RECEIVER_MODULES,
    )
    answer = sim.register_with(f"{ocpi_base}/ocpi/versions", token_a)
    assert answer["status_code"] == 1000, answer
    partner.refresh_from_db()
    return partner


# --------------------------------------------------------------------------- what a partner sent (admin walkers)


def roaming_command_for(tenant: Tenant) -> RoamingCommand:
    """A START_SESSION a partner of `tenant` sent, resolved to one of its chargers."""
    partner = partner_for(tenant)[0]
    return RoamingCommand.objects.create(
        partner=partner,
        command="START_SESSION",
        request={"token": {"uid": "CMD-CARD"}, "location_id": "LOC-1", "response_url": "http://127.0.0.1:9/r/1"},
        response_url="http://127.0.0.1:9/r/1",
        charge_point=ChargePointFactory(tenant=tenant),
    )


def partner_token_for(tenant: Tenant) -> PartnerToken:
    """A token a partner of `tenant` pushed (a customers Token of source roaming, in the partner's party)."""
    partner = partner_for(tenant)[0]
    token = TokenFactory(
        tenant=tenant, source=TokenSource.ROAMING, country_code=partner.country_code, party_id=partner.party_id
    )
    return PartnerToken.objects.create(partner=partner, token=token, last_updated=timezone.now())


def partner_reservation_for(tenant: Tenant) -> PartnerReservation:
    """A partner's RESERVE_NOW on a charger of `tenant`, with the reservation our charger got."""
    partner = partner_for(tenant)[0]
    charge_point = ChargePointFactory(tenant=tenant)
    reservation = ReservationFactory(charge_point=charge_point)
    return PartnerReservation.objects.create(
        partner=partner, their_reservation_id="THEIR-RES-1", charge_point=charge_point, reservation=reservation
    )


# --------------------------------------------------------------------------- our drivers on partner EVSEs (eMSP)


def partner_session_for(tenant: Tenant) -> Any:
    """A reservation of a driver of `tenant` on a partner EVSE, with its RESERVE_NOW (what the driver API lists as a
    partner session and as a partner reservation)."""
    from apps.roaming.models import EmspCommand
    from apps.sessions.models import PartnerSession
    from tests.customers.factories import DriverFactory

    partner = partner_for(tenant, roles=["CPO"], our_roles=["EMSP"])[0]
    driver = DriverFactory(tenant=tenant)
    token = TokenFactory(tenant=tenant, driver=driver)
    n = next(_counter)
    session = PartnerSession.objects.create(
        tenant=tenant,
        partner=partner,
        country_code=partner.country_code,
        party_id=partner.party_id,
        authorization_reference=f"REF{n:08d}",
        state="RESERVATION",
        token=token,
        driver=driver,
        location_ocpi_id="LOC-1",
        evse_uid="EVSE-1",
        reservation_expires_at=timezone.now() + dt.timedelta(hours=1),
    )
    EmspCommand.objects.create(
        partner=partner,
        session=session,
        uid=f"cmd{n:08d}",
        command="RESERVE_NOW",
        request={"reservation_id": session.authorization_reference},
        state="done",
        result="ACCEPTED",
        deadline=timezone.now(),
    )
    return session


def emsp_authorization_for(tenant: Tenant) -> EmspAuthorization:
    """A CPO partner's real-time authorization of one of `tenant`'s tokens, answered ALLOWED."""
    partner = partner_for(tenant, roles=["CPO"], our_roles=["EMSP"])[0]
    return EmspAuthorization.objects.create(
        tenant=tenant,
        partner=partner,
        token=TokenFactory(tenant=tenant),
        allowed="ALLOWED",
        reason="accepted",
        authorization_reference=f"REF{next(_counter):08d}",
        location_id="LOC1",
    )
