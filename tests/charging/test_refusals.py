"""Refused starts get a clear error and change nothing (no command sent, no row written); lists keep a
constant number of queries per page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.sessions.models import ChargingSession, Reservation, ReservationStatus, SessionStatus
from apps.stations.models import Command
from apps.tenants.models import Role, Tenant
from tests.charging.factories import ChargingSessionFactory, ReservationFactory
from tests.customers.factories import DriverFactory, TokenFactory
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tenant_a: Tenant) -> dict[str, Any]:
    cp = ChargePointFactory(tenant=tenant_a)
    ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=1, evse_uid="DE*REF*E1*1"))
    driver = DriverFactory(tenant=tenant_a)
    return {"cp": cp, "driver": driver}


def _state() -> tuple[int, int, int]:
    return Command.objects.count(), ChargingSession.objects.count(), Reservation.objects.count()


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


def test_expired_reservation_and_busy_connector_are_refused(
    world: dict[str, Any], tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    TokenFactory(tenant=tenant_a, driver=world["driver"], uid="GOOD-1")
    expired = ReservationFactory(
        charge_point=world["cp"],
        connector_id=1,
        driver=world["driver"],
        status=ReservationStatus.EXPIRED,
        starts_at=timezone.now() - dt.timedelta(hours=2),
        expires_at=timezone.now() - dt.timedelta(hours=1),
    )
    client = client_for(tenant_a, Role.ADMIN)
    before = _state()

    late = client.post(
        "/api/v1/driver/sessions/",
        {"driver": world["driver"].pk, "charge_point": world["cp"].pk, "reservation": expired.pk},
        format="json",
    )
    assert (late.status_code, late.json()["code"]) == (409, "reservation_expired")
    assert _state() == before

    ChargingSessionFactory(charge_point=world["cp"], connector_id=1, status=SessionStatus.ACTIVE, id_tag="X")
    before = _state()
    busy = client.post(
        "/api/v1/driver/sessions/",
        {"driver": world["driver"].pk, "charge_point": world["cp"].pk, "connector_id": 1},
        format="json",
    )
    assert (busy.status_code, busy.json()["code"]) == (409, "connector_busy")
    assert _state() == before


@pytest.mark.parametrize("url", ["/api/v1/sessions/", "/api/v1/driver/sessions/", "/api/v1/driver/tokens/"])
def test_lists_keep_constant_queries(
    url: str, tenant_a: Tenant, client_for: Callable[..., APIClient], django_assert_max_num_queries: Any
) -> None:
    client = client_for(tenant_a, Role.ADMIN)
    cp = ChargePointFactory(tenant=tenant_a)
    for n in range(3):
        ChargingSessionFactory(charge_point=cp, connector_id=n + 1)
        TokenFactory(tenant=tenant_a)
    client.get(url)  # warm caches (content types, ...)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for n in range(20):
        ChargingSessionFactory(charge_point=cp, connector_id=n + 10)
        TokenFactory(tenant=tenant_a)
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200

    assert len(many) == len(few)
