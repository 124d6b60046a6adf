"""Refused starts get a clear error and change nothing (no command sent, no row written); lists keep a
constant number of queries per page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.customers.models import Token
from apps.sessions.models import ChargingSession, Reservation, ReservationStatus, SessionEvent, SessionStatus
from apps.stations.models import Command
from apps.tenants.models import Role, Tenant
from tests.charging.factories import ChargingSessionFactory, ReservationFactory
from tests.customers.factories import (
    BusinessCustomerFactory,
    ContractFactory,
    DriverFactory,
    TokenFactory,
    VehicleFactory,
)
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tenant_a: Tenant) -> dict[str, Any]:
    cp = ChargePointFactory(tenant=tenant_a)
    ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=1, evse_uid="DE*REF*E1*1"))
    driver = DriverFactory(tenant=tenant_a)
    return {"cp": cp, "driver": driver}


def _state() -> tuple[list[Any], ...]:
    """Everything a start or a reservation could write: commands, sessions (and their state), reservations."""
    return (
        list(Command.objects.order_by("pk").values_list("pk", "action", "status")),
        list(ChargingSession.objects.order_by("pk").values_list("pk", "status", "reservation_id")),
        list(Reservation.objects.order_by("pk").values_list("pk", "status", "detail", "driver_id")),
    )


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [
        (None, 422, "token_unknown"),
        ({"blocked": True}, 403, "token_blocked"),
        ({"expires_at": timezone.now() - dt.timedelta(days=1)}, 403, "token_expired"),
    ],
)
def test_bad_tokens_are_refused_and_nothing_changes(
    token: dict[str, Any] | None,
    status: int,
    code: str,
    world: dict[str, Any],
    tenant_a: Tenant,
    client_for: Callable[..., APIClient],
) -> None:
    if token is not None:
        TokenFactory(tenant=tenant_a, driver=world["driver"], uid="BAD-1", **token)
    before = _state()

    response = client_for(tenant_a, Role.ADMIN).post(
        "/api/v1/driver/sessions/",
        {"driver": world["driver"].pk, "qr": "DE*REF*E1*1", "token_uid": "BAD-1"},
        format="json",
    )

    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert _state() == before


@pytest.mark.parametrize(
    "status",
    [ReservationStatus.EXPIRED, ReservationStatus.ACTIVE],  # marked by the job, or not yet
)
def test_an_expired_reservation_is_refused(
    status: str, world: dict[str, Any], tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    TokenFactory(tenant=tenant_a, driver=world["driver"], uid="GOOD-1")
    expired = ReservationFactory(
        charge_point=world["cp"],
        connector_id=1,
        driver=world["driver"],
        status=status,
        starts_at=timezone.now() - dt.timedelta(hours=2),
        expires_at=timezone.now() - dt.timedelta(hours=1),
    )
    before = _state()

    late = client_for(tenant_a, Role.ADMIN).post(
        "/api/v1/driver/sessions/",
        {"driver": world["driver"].pk, "charge_point": world["cp"].pk, "reservation": expired.pk},
        format="json",
    )

    assert (late.status_code, late.json()["code"]) == (409, "reservation_expired")
    assert _state() == before


def test_a_connector_reserved_by_someone_else_is_refused(
    world: dict[str, Any], tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    TokenFactory(tenant=tenant_a, driver=world["driver"], uid="GOOD-1")
    ReservationFactory(charge_point=world["cp"], connector_id=1, driver=DriverFactory(tenant=tenant_a), id_tag="X")
    client = client_for(tenant_a, Role.ADMIN)
    before = _state()

    by_qr = client.post("/api/v1/driver/sessions/", {"driver": world["driver"].pk, "qr": "DE*REF*E1*1"}, format="json")
    reserve = client.post(
        "/api/v1/reservations/",
        {
            "driver": world["driver"].pk,
            "charge_point": world["cp"].pk,
            "connector_id": 1,
            "expires_at": (timezone.now() + dt.timedelta(minutes=10)).isoformat(),
        },
        format="json",
    )

    assert (by_qr.status_code, by_qr.json()["code"]) == (409, "connector_reserved")
    assert (reserve.status_code, reserve.json()["code"]) == (409, "connector_reserved")
    assert _state() == before


def test_a_second_start_on_a_busy_connector_is_refused(
    world: dict[str, Any], tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    TokenFactory(tenant=tenant_a, driver=world["driver"], uid="GOOD-1")
    ChargingSessionFactory(charge_point=world["cp"], connector_id=1, status=SessionStatus.ACTIVE, id_tag="X")
    before = _state()

    busy = client_for(tenant_a, Role.ADMIN).post(
        "/api/v1/driver/sessions/",
        {"driver": world["driver"].pk, "charge_point": world["cp"].pk, "connector_id": 1},
        format="json",
    )

    assert (busy.status_code, busy.json()["code"]) == (409, "connector_busy")
    assert _state() == before


def test_a_token_already_charging_is_refused(
    world: dict[str, Any], tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    TokenFactory(tenant=tenant_a, driver=world["driver"], uid="GOOD-1")
    elsewhere = ChargePointFactory(tenant=tenant_a)
    ChargingSessionFactory(charge_point=elsewhere, connector_id=1, status=SessionStatus.ACTIVE, id_tag="GOOD-1")
    before = _state()

    second = client_for(tenant_a, Role.ADMIN).post(
        "/api/v1/driver/sessions/", {"driver": world["driver"].pk, "qr": "DE*REF*E1*1"}, format="json"
    )

    assert (second.status_code, second.json()["code"]) == (409, "token_concurrent_tx")
    assert _state() == before


def _linked_rows(tenant: Tenant, cp: Any, n: int) -> None:
    """A session with every link set (token, driver, fleet, contract, vehicle, events) and a token of a driver."""
    fleet = BusinessCustomerFactory(tenant=tenant)
    driver = DriverFactory(tenant=tenant, business_customer=fleet)
    token = TokenFactory(tenant=tenant, driver=driver, business_customer=fleet)
    session = ChargingSessionFactory(
        charge_point=cp,
        connector_id=n,
        id_tag=token.uid,
        token=token,
        driver=driver,
        business_customer=fleet,
        contract=ContractFactory(tenant=tenant, business_customer=fleet),
        vehicle=VehicleFactory(tenant=tenant, driver=driver),
    )
    SessionEvent.objects.create(session=session, to_status="active")


@pytest.mark.parametrize(
    ("url", "rows"),
    [
        ("/api/v1/sessions/", ChargingSession),
        ("/api/v1/driver/sessions/", ChargingSession),
        ("/api/v1/driver/tokens/", Token),
        ("/api/v1/tokens/", Token),
    ],
)
def test_lists_keep_constant_queries(
    url: str, rows: Any, tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    client = client_for(tenant_a, Role.ADMIN)
    cp = ChargePointFactory(tenant=tenant_a)
    for n in range(2):
        _linked_rows(tenant_a, cp, n + 1)
    client.get(url)  # warm caches (content types, ...)
    with CaptureQueriesContext(connection) as few:
        first = client.get(url)
    for n in range(20):
        _linked_rows(tenant_a, cp, n + 10)
    with CaptureQueriesContext(connection) as many:
        second = client.get(url)

    assert (first.status_code, len(first.json()["results"])) == (200, 2)
    assert (second.status_code, len(second.json()["results"])) == (200, 22)
    assert rows.objects.count() == 22
    assert len(many) == len(few)
