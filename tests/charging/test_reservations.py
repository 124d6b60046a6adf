"""Reservations: cancel through the API and the admin action (CancelReservation over a real WebSocket, the
charger's answer kept, Rejected handled), and expiry (the beat job; an expired reservation is not honoured at
StartTransaction and its connector is free again)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.sessions import commands, services, tasks
from apps.sessions.models import ChargingSession, Reservation, ReservationStatus
from apps.stations.models import Command
from apps.tenants.models import Role, Tenant
from tests.charging.factories import ReservationFactory
from tests.customers.factories import DriverFactory, TokenFactory
from tests.ocpp.conftest import Charger, ConnectCharger, Station, db
from tests.ocpp.test_core import BOOT
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory
from tests.tenants.factories import MembershipFactory, UserFactory, api_key_for


def _drivers(stn: Station) -> dict[str, Any]:
    driver = DriverFactory(tenant=stn.tenant)
    TokenFactory(tenant=stn.tenant, uid="RES-1", driver=driver)
    _, raw = api_key_for(stn.tenant, ["driver:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return {"driver": driver, "client": client}


async def _reserve(station: Station, connect: ConnectCharger) -> tuple[Charger, APIClient, int]:
    given = await db(_drivers)(station)
    charger = await connect(station.charge_point.identity, station.password)
    await charger.ok("BootNotification", BOOT)
    charger.answers["ReserveNow"] = {"status": "Accepted"}
    reserved = await db(given["client"].post)(
        "/api/v1/reservations/",
        {
            "driver": given["driver"].pk,
            "charge_point": station.charge_point.pk,
            "connector_id": 1,
            "expires_at": (timezone.now() + dt.timedelta(minutes=20)).isoformat(),
        },
        format="json",
    )
    assert reserved.status_code == 201, reserved.content
    assert reserved.json()["status"] == "active"
    return charger, given["client"], reserved.json()["id"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        ("Accepted", "CancelReservation: accepted"),
        ("Rejected", "CancelReservation: rejected (the charger holds no such reservation)"),
    ],
)
async def test_cancel_through_the_api_sends_cancel_reservation_and_keeps_the_answer(
    answer: str, detail: str, station: Station, connect: ConnectCharger
) -> None:
    charger, client, reservation_id = await _reserve(station, connect)
    charger.answers["CancelReservation"] = {"status": answer}

    cancelled = await db(client.post)(f"/api/v1/reservations/{reservation_id}/cancel/", {}, format="json")

    assert cancelled.status_code == 200, cancelled.content
    assert (cancelled.json()["status"], cancelled.json()["detail"]) == ("cancelled", detail)
    assert [(f[2], f[3]) for f in charger.received_calls] == [
        ("ReserveNow", charger.received_calls[0][3]),
        ("CancelReservation", {"reservationId": reservation_id}),
    ]
    reservation = await db(Reservation.objects.get)(pk=reservation_id)
    command = await db(Command.objects.get)(pk=reservation.command_id)
    assert (reservation.status, reservation.detail) == ("cancelled", detail)
    assert (command.action, command.status) == ("CancelReservation", answer.lower())

    # a second cancel is refused and sends nothing
    again = await db(client.post)(f"/api/v1/reservations/{reservation_id}/cancel/", {}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "reservation_not_active")
    assert len(charger.received_calls) == 2
    assert (await db(Reservation.objects.get)(pk=reservation_id)).detail == detail


def _admin_client(tenant: Tenant, role: str) -> Client:
    client = Client()
    client.force_login(MembershipFactory(tenant=tenant, role=role, user=UserFactory(is_staff=True)).user)
    return client


@pytest.mark.django_db(transaction=True)
async def test_the_admin_action_cancels_through_the_service(station: Station, connect: ConnectCharger) -> None:
    charger, _, reservation_id = await _reserve(station, connect)
    charger.answers["CancelReservation"] = {"status": "Accepted"}
    client = await db(_admin_client)(station.tenant, Role.OPERATIONS)

    response = await db(client.post)(
        "/admin/charging/reservation/",
        {"action": "cancel_selected", "_selected_action": [reservation_id]},
        follow=True,
    )

    assert response.status_code == 200
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"reservation {reservation_id}: cancelled (CancelReservation: accepted)."
    ]
    assert [f[2] for f in charger.received_calls] == ["ReserveNow", "CancelReservation"]
    assert (await db(Reservation.objects.get)(pk=reservation_id)).status == "cancelled"


@pytest.mark.django_db
def test_the_admin_action_is_not_offered_to_read_only_staff_and_changes_nothing(tenant_a: Tenant) -> None:
    reservation = ReservationFactory(charge_point=ChargePointFactory(tenant=tenant_a))
    client = _admin_client(tenant_a, Role.READ_ONLY)

    listing = client.get("/admin/charging/reservation/")
    posted = client.post(
        "/admin/charging/reservation/", {"action": "cancel_selected", "_selected_action": [reservation.pk]}
    )

    assert listing.status_code == 200
    assert "cancel_selected" not in listing.content.decode()
    assert posted.status_code in (200, 302)
    assert Reservation.objects.get(pk=reservation.pk).status == ReservationStatus.ACTIVE
    assert Command.objects.count() == 0


# --------------------------------------------------------------------------- expiry


@pytest.fixture
def reserved(tenant_a: Tenant) -> dict[str, Any]:
    cp = ChargePointFactory(tenant=tenant_a)
    ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=1))
    owner = DriverFactory(tenant=tenant_a)
    TokenFactory(tenant=tenant_a, uid="OWNER-1", driver=owner)
    other = DriverFactory(tenant=tenant_a)
    TokenFactory(tenant=tenant_a, uid="OTHER-1", driver=other)
    now = timezone.now()
    reservation = ReservationFactory(
        charge_point=cp,
        connector_id=1,
        driver=owner,
        id_tag="OWNER-1",
        starts_at=now - dt.timedelta(minutes=40),
        expires_at=now - dt.timedelta(minutes=10),
        status=ReservationStatus.ACTIVE,
    )
    live = ReservationFactory(  # another charger's reservation, still running: the job leaves it alone
        charge_point=ChargePointFactory(tenant=tenant_a), connector_id=1, status=ReservationStatus.ACTIVE
    )
    return {"cp": cp, "owner": owner, "other": other, "reservation": reservation, "live": live}


@pytest.mark.django_db
def test_the_beat_job_expires_past_reservations_once(reserved: dict[str, Any]) -> None:
    assert tasks.expire_reservations() == 1
    assert tasks.expire_reservations() == 0

    assert Reservation.objects.get(pk=reserved["reservation"].pk).status == ReservationStatus.EXPIRED
    assert Reservation.objects.get(pk=reserved["live"].pk).status == ReservationStatus.ACTIVE


@pytest.mark.django_db
@pytest.mark.parametrize("job_ran", [True, False])
def test_an_expired_reservation_is_not_honoured_and_frees_the_connector(
    job_ran: bool, reserved: dict[str, Any], tenant_a: Tenant
) -> None:
    if job_ran:
        tasks.expire_reservations()
    reservation = reserved["reservation"]

    # the owner's start naming the expired reservation: accepted as a plain start, not linked to it
    own, own_info = services.session_start(
        charge_point_id=reserved["cp"].pk,
        connector_id=1,
        id_tag="OWNER-1",
        meter_start=0,
        timestamp=timezone.now(),
        reservation_id=reservation.pk,
    )
    services.session_stop(
        charge_point_id=reserved["cp"].pk, transaction_id=own.pk, meter_stop=10, timestamp=timezone.now()
    )
    # someone else may start on the connector it held
    other, other_info = services.session_start(
        charge_point_id=reserved["cp"].pk, connector_id=1, id_tag="OTHER-1", meter_start=10, timestamp=timezone.now()
    )
    # and the owner may reserve it anew once that one ends
    services.session_stop(
        charge_point_id=reserved["cp"].pk, transaction_id=other.pk, meter_stop=20, timestamp=timezone.now()
    )
    new = commands.reservation_create(
        tenant=tenant_a,
        driver=reserved["owner"],
        charge_point=reserved["cp"],
        connector_id=1,
        expires_at=timezone.now() + dt.timedelta(minutes=30),
    )

    assert (own_info.status, own.reservation_id, own.auth_reason) == ("Accepted", None, "")
    assert (other_info.status, other.reservation_id, other.auth_reason) == ("Accepted", None, "")
    assert new.status == ReservationStatus.PENDING
    expected = ReservationStatus.EXPIRED if job_ran else ReservationStatus.ACTIVE
    assert Reservation.objects.get(pk=reservation.pk).status == expected  # never "used"
    assert ChargingSession.objects.filter(reservation_id=reservation.pk).count() == 0
