"""Data quality of running sessions: the beat job flags sessions running far too long (setting
CHARGING_SESSION_TOO_LONG_HOURS), once, and the admin filters sessions by the reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.sessions import services, tasks
from apps.sessions.models import ChargingSession, SessionStatus
from apps.tenants.models import Role, Tenant
from tests.charging.factories import ChargingSessionFactory
from tests.stations.factories import ChargePointFactory
from tests.tenants.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(tenant_a: Tenant) -> dict[str, ChargingSession]:
    cp = ChargePointFactory(tenant=tenant_a)
    now = timezone.now()

    def make(connector: int, hours: float, status: str, reasons: list[str] | None = None) -> ChargingSession:
        return ChargingSessionFactory(
            charge_point=cp,
            connector_id=connector,
            status=status,
            started_at=now - dt.timedelta(hours=hours),
            suspicious=bool(reasons),
            suspicious_reasons=reasons or [],
        )

    return {
        "active_25h": make(1, 25, SessionStatus.ACTIVE),
        "suspended_30h": make(2, 30, SessionStatus.SUSPENDED),
        "active_23h": make(3, 23, SessionStatus.ACTIVE),
        "completed_30h": make(4, 30, SessionStatus.COMPLETED),
        "finishing_30h": make(5, 30, SessionStatus.FINISHING),
        "flagged_before": make(6, 40, SessionStatus.ACTIVE, ["too_long"]),
        "other_reason": make(7, 26, SessionStatus.ACTIVE, ["future_timestamp"]),
    }


def _reasons(sessions: dict[str, ChargingSession]) -> dict[str, tuple[bool, list[str]]]:
    rows = {s.pk: (s.suspicious, s.suspicious_reasons) for s in ChargingSession.objects.all()}
    return {name: rows[s.pk] for name, s in sessions.items()}


def test_the_beat_job_flags_running_sessions_past_the_threshold_once(running: dict[str, ChargingSession]) -> None:
    assert tasks.flag_too_long() == 3
    assert tasks.flag_too_long() == 0  # idempotent: no second reason, nothing rewritten

    assert _reasons(running) == {
        "active_25h": (True, ["too_long"]),
        "suspended_30h": (True, ["too_long"]),
        "active_23h": (False, []),
        "completed_30h": (False, []),  # ended sessions are judged at completion
        "finishing_30h": (False, []),  # being stopped already
        "flagged_before": (True, ["too_long"]),
        "other_reason": (True, ["future_timestamp", "too_long"]),
    }


def test_the_threshold_is_a_setting(running: dict[str, ChargingSession], settings: Any) -> None:
    settings.CHARGING_SESSION_TOO_LONG_HOURS = 28

    assert tasks.flag_too_long() == 1

    assert _reasons(running)["suspended_30h"] == (True, ["too_long"])
    assert _reasons(running)["active_25h"] == (False, [])


def test_the_job_is_a_beat_entry() -> None:
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULE["charging-flag-too-long"]["task"] == "charging.flag_too_long"
    assert settings.CHARGING_SESSION_TOO_LONG_HOURS == 24


def test_a_flagged_session_keeps_the_reason_when_it_completes(running: dict[str, ChargingSession]) -> None:
    services.sessions_flag_too_long()
    session = running["active_25h"]

    services.session_stop(
        charge_point_id=session.charge_point_id,
        transaction_id=session.pk,
        meter_stop=30_000,
        timestamp=timezone.now(),
        reason="EVDisconnected",
    )

    session.refresh_from_db()
    assert (session.status, session.suspicious, session.suspicious_reasons) == (
        SessionStatus.COMPLETED,
        True,
        ["too_long"],
    )


def test_the_admin_filters_sessions_by_reason(running: dict[str, ChargingSession], tenant_a: Tenant) -> None:
    services.sessions_flag_too_long()
    client = Client()
    client.force_login(MembershipFactory(tenant=tenant_a, role=Role.READ_ONLY, user=UserFactory()).user)

    page = client.get("/admin/charging/chargingsession/", {"reason": "too_long"})

    assert page.status_code == 200
    shown = sorted(obj.pk for obj in page.context["cl"].result_list)
    expected = ["active_25h", "suspended_30h", "flagged_before", "other_reason"]
    assert shown == sorted(running[name].pk for name in expected)
