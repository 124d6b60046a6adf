"""Charging preferences (OCPI ChargingPreferences): the driver gives a departure time and an energy need at the
start or later; they are validated, audited, carried into the session, ask for a recompute, and steer the
departure-aware optimizer (defaults from the vehicle's battery and the site's dwell where absent)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.energy import selectors, services, tasks
from apps.energy.models import NodeKind, Strategy
from apps.sessions import services as session_services
from apps.sessions.models import ChargingSession, SessionEvent, SessionStatus, StartPreferences
from apps.stations.models import Command
from apps.tenants.models import Role
from tests.charging.factories import ChargingSessionFactory
from tests.customers.factories import DriverFactory, TokenFactory, VehicleFactory
from tests.energy.factories import GridNodeFactory
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def recomputes(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Recompute requests that reached the debounce task (recorded instead of touching the shared Redis)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks, "recompute_debounced", lambda **kw: calls.append(kw) or True)
    return calls


def _site(strategy: str = Strategy.EQUAL_SHARE, max_current_a: int = 32, **root: Any) -> tuple[Any, list[Any]]:
    """A site node with two 32 A charge points of one connector each."""
    node = GridNodeFactory(max_current_a=max_current_a, strategy=strategy, **root)
    cps = []
    for _ in range(2):
        cp = ChargePointFactory(tenant=node.tenant, location=node.location)
        ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=1), max_amperage=32)
        GridNodeFactory(
            tenant=node.tenant, location=node.location, parent=node, kind=NodeKind.CHARGE_POINT, charge_point=cp,
            max_current_a=None,
        )  # fmt: skip
        cps.append(cp)
    return node, cps


def _session(cp: Any, **fields: Any) -> ChargingSession:
    fields.setdefault("status", SessionStatus.ACTIVE)
    session: ChargingSession = ChargingSessionFactory(charge_point=cp, connector_id=1, **fields)
    return session


def _prefs_state(session: ChargingSession) -> tuple[Any, ...]:
    session.refresh_from_db()
    return (
        session.departure_at,
        session.energy_need_wh,
        SessionEvent.objects.filter(session=session).count(),
    )


def test_the_driver_sets_preferences_on_a_running_session_it_is_audited_and_the_site_recomputes(
    client_for: Callable[..., APIClient],
    recomputes: list[dict[str, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given a running session on a site
    root, (cp, _) = _site()
    session = _session(cp)
    departure = (timezone.now() + dt.timedelta(hours=3)).replace(microsecond=0)

    # when the driver app says when the car leaves and how much it wants
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(root.tenant, Role.ADMIN).post(
            f"/api/v1/driver/sessions/{session.pk}/preferences/",
            {"departure_at": departure.isoformat(), "energy_need_wh": 20_000},
            format="json",
        )

    # then the session has them, the change is audited, and the site's recompute was asked for
    assert response.status_code == 200, response.content
    assert response.json()["energy_need_wh"] == 20_000
    assert dt.datetime.fromisoformat(response.json()["departure_at"]) == departure
    session.refresh_from_db()
    assert (session.departure_at, session.energy_need_wh) == (departure, 20_000)
    event = SessionEvent.objects.get(session=session, reason="charging preferences")
    assert event.detail == {
        "before": {"departure_at": None, "energy_need_wh": None},
        "after": {"departure_at": departure.isoformat(), "energy_need_wh": 20_000},
    }
    assert recomputes == [{"site_id": root.pk, "trigger": "preferences"}]


def test_one_preference_can_be_changed_alone_and_null_clears_it(client_for: Callable[..., APIClient]) -> None:
    root, (cp, _) = _site()
    departure = timezone.now() + dt.timedelta(hours=2)
    session = _session(cp, departure_at=departure, energy_need_wh=10_000)
    client = client_for(root.tenant, Role.ADMIN)

    need_only = client.post(
        f"/api/v1/driver/sessions/{session.pk}/preferences/", {"energy_need_wh": 12_000}, format="json"
    )
    cleared = client.post(f"/api/v1/driver/sessions/{session.pk}/preferences/", {"departure_at": None}, format="json")

    assert (need_only.status_code, cleared.status_code) == (200, 200)
    session.refresh_from_db()
    assert (session.departure_at, session.energy_need_wh) == (None, 12_000)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"departure_at": "PAST"}, "departure_at"),
        ({"energy_need_wh": 0}, "energy_need_wh"),
        ({"energy_need_wh": -5}, "energy_need_wh"),
        ({"energy_need_wh": "lots"}, "energy_need_wh"),
        ({}, "departure_at"),
        ({"energy_need_wh": 1000, "profile_type": "FAST"}, "profile_type"),
    ],
)
def test_bad_preferences_are_400_in_the_one_error_shape_and_change_nothing(
    body: dict[str, Any],
    field: str,
    client_for: Callable[..., APIClient],
    recomputes: list[dict[str, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    root, (cp, _) = _site()
    session = _session(cp, energy_need_wh=8_000)
    if body.get("departure_at") == "PAST":
        body = {"departure_at": (timezone.now() - dt.timedelta(minutes=1)).isoformat()}
    before = _prefs_state(session)

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(root.tenant, Role.ADMIN).post(
            f"/api/v1/driver/sessions/{session.pk}/preferences/", body, format="json"
        )

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["fields"]
    assert _prefs_state(session) == before
    assert recomputes == []


@pytest.mark.parametrize("status", [SessionStatus.FINISHING, SessionStatus.COMPLETED])
def test_preferences_of_a_session_that_no_longer_runs_are_409_and_change_nothing(
    status: str, client_for: Callable[..., APIClient]
) -> None:
    root, (cp, _) = _site()
    session = _session(cp, status=status)
    before = _prefs_state(session)

    response = client_for(root.tenant, Role.ADMIN).post(
        f"/api/v1/driver/sessions/{session.pk}/preferences/", {"energy_need_wh": 5_000}, format="json"
    )

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "session_not_running"
    assert _prefs_state(session) == before


def test_preferences_of_another_tenants_session_are_404_and_change_nothing(
    client_for: Callable[..., APIClient],
) -> None:
    _root, (cp, _) = _site()
    session = _session(cp)
    before = _prefs_state(session)

    response = client_for(TenantFactory(), Role.ADMIN).post(
        f"/api/v1/driver/sessions/{session.pk}/preferences/", {"energy_need_wh": 5_000}, format="json"
    )

    assert response.status_code == 404
    assert _prefs_state(session) == before


def _start_state() -> tuple[list[Any], ...]:
    return (
        list(Command.objects.order_by("pk").values_list("pk", "status")),
        list(StartPreferences.objects.order_by("pk").values_list("pk", "session_id")),
        list(ChargingSession.objects.order_by("pk").values_list("pk", "status")),
    )


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"departure_at": "PAST"}, "departure_at"), ({"energy_need_wh": 0}, "energy_need_wh")],
)
def test_a_start_with_bad_preferences_is_400_and_nothing_is_sent_or_stored(
    extra: dict[str, Any], field: str, client_for: Callable[..., APIClient]
) -> None:
    root, (cp, _) = _site()
    driver = DriverFactory(tenant=root.tenant)
    TokenFactory(tenant=root.tenant, driver=driver, uid="PREF-1")
    if extra.get("departure_at") == "PAST":
        extra = {"departure_at": (timezone.now() - dt.timedelta(minutes=5)).isoformat()}
    before = _start_state()

    response = client_for(root.tenant, Role.ADMIN).post(
        "/api/v1/driver/sessions/",
        {"driver": driver.pk, "charge_point": cp.pk, "connector_id": 1, "token_uid": "PREF-1", **extra},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert _start_state() == before


@pytest.mark.django_db(transaction=True)  # send_command refuses to wait inside a transaction
def test_a_start_with_preferences_the_charger_cannot_take_leaves_no_preferences_behind(
    client_for: Callable[..., APIClient],
) -> None:
    # given a charger that is not connected
    root, (cp, _) = _site()
    driver = DriverFactory(tenant=root.tenant)
    TokenFactory(tenant=root.tenant, driver=driver, uid="PREF-2")

    # when the driver starts with a departure time and a need
    response = client_for(root.tenant, Role.ADMIN).post(
        "/api/v1/driver/sessions/",
        {
            "driver": driver.pk,
            "charge_point": cp.pk,
            "connector_id": 1,
            "token_uid": "PREF-2",
            "departure_at": (timezone.now() + dt.timedelta(hours=4)).isoformat(),
            "energy_need_wh": 15_000,
        },
        format="json",
    )

    # then the start is refused and the preferences are gone with it
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "charge_point_offline"
    assert StartPreferences.objects.count() == 0


def test_the_session_a_remote_start_opens_takes_over_its_preferences() -> None:
    # given preferences stored with a remote start (and an older, stale one of the same tag)
    root, (cp, _) = _site()
    now = timezone.now()
    departure = now + dt.timedelta(hours=5)
    stale = StartPreferences.objects.create(
        tenant=root.tenant,
        charge_point=cp,
        id_tag="PREF-3",
        energy_need_wh=1_000,
        created_at=now - dt.timedelta(hours=1),
    )
    fresh = StartPreferences.objects.create(
        tenant=root.tenant, charge_point=cp, id_tag="PREF-3", departure_at=departure, energy_need_wh=30_000
    )

    # when the charger's StartTransaction for that tag arrives
    session, _info = session_services.session_start(
        charge_point_id=cp.pk, connector_id=1, id_tag="PREF-3", meter_start=100, timestamp=now
    )

    # then the session has the fresh preferences and the row says which session took them
    session.refresh_from_db()
    assert (session.departure_at, session.energy_need_wh) == (departure, 30_000)
    fresh.refresh_from_db()
    stale.refresh_from_db()
    assert (fresh.session_id, stale.session_id) == (session.pk, None)


def test_a_start_without_remote_preferences_has_none() -> None:
    _root, (cp, _) = _site()
    other_cp = ChargePointFactory(tenant=cp.tenant)
    StartPreferences.objects.create(tenant=cp.tenant, charge_point=other_cp, id_tag="PREF-4", energy_need_wh=9_000)

    session, _info = session_services.session_start(
        charge_point_id=cp.pk, connector_id=1, id_tag="PREF-4", meter_start=0, timestamp=timezone.now()
    )

    session.refresh_from_db()
    assert (session.departure_at, session.energy_need_wh) == (None, None)


def test_the_optimizer_input_carries_the_remaining_need_a_future_departure_and_the_site_dwell() -> None:
    # given a site with a 3 h default dwell; one session with preferences (5 kWh delivered of 20 kWh wanted),
    # one whose stated departure has passed, one with none but a vehicle of 77 kWh
    root, (cp1, cp2) = _site(default_dwell_minutes=180)
    cp3 = ChargePointFactory(tenant=root.tenant, location=root.location)
    ConnectorFactory(evse=EvseFactory(charge_point=cp3, connector_id=1), max_amperage=32)
    GridNodeFactory(
        tenant=root.tenant, location=root.location, parent=root, kind=NodeKind.CHARGE_POINT, charge_point=cp3,
        max_current_a=None,
    )  # fmt: skip
    now = timezone.now()
    departure = now + dt.timedelta(hours=2)
    with_prefs = _session(cp1, departure_at=departure, energy_need_wh=20_000, meter_start_wh=1_000, last_meter_wh=6_000)
    passed = _session(cp2, departure_at=now - dt.timedelta(minutes=10), energy_need_wh=4_000)
    vehicle = VehicleFactory(tenant=root.tenant, battery_kwh=77)
    bare = _session(cp3, vehicle=vehicle)

    inp = selectors.site_input(site_id=root.pk, at=now)

    by_id = {s.id: s for s in inp.sessions}
    assert (by_id[str(with_prefs.pk)].departure, by_id[str(with_prefs.pk)].energy_needed_wh) == (departure, 15_000.0)
    assert (by_id[str(passed.pk)].departure, by_id[str(passed.pk)].energy_needed_wh) == (None, 4_000.0)
    assert (by_id[str(bare.pk)].departure, by_id[str(bare.pk)].energy_needed_wh) == (None, None)
    assert by_id[str(bare.pk)].battery_capacity_wh == 77_000.0
    assert inp.config.default_dwell == dt.timedelta(hours=3)


def test_departure_aware_sites_give_the_car_that_leaves_first_what_it_needs() -> None:
    # given a departure-aware site of 32 A and two cars; the one leaving in 1 h needs 10 kWh
    root, (cp1, cp2) = _site(strategy=Strategy.DEPARTURE_AWARE)
    now = timezone.now()
    soon = _session(cp1, departure_at=now + dt.timedelta(hours=1), energy_need_wh=10_000)
    later = _session(cp2, departure_at=now + dt.timedelta(hours=10), energy_need_wh=10_000)

    # when the site is recomputed
    outcome = services.site_recompute(site_id=root.pk, at=now, send=False)

    # then the car leaving soon gets the 17 A it needs (10 kWh / 0.9 h / 690 W per A, rounded up), the other the rest
    alloc = outcome.result.sessions
    assert (alloc[str(soon.pk)].level_a, alloc[str(later.pk)].level_a) == (17.0, 15.0)
