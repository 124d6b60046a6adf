from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.ocpp.models import MessageLog
from apps.ocpp.tasks import purge_message_log
from apps.stations.models import ChargePoint, StatusEvent
from apps.stations.tasks import mark_offline
from tests.stations.factories import ChargePointFactory

pytestmark = pytest.mark.django_db


def test_purge_message_log_keeps_rows_inside_retention(settings: object) -> None:
    settings.OCPP_MESSAGE_LOG_RETENTION_DAYS = 7  # type: ignore[attr-defined]
    cp = ChargePointFactory()
    now = timezone.now()
    for age in (1, 6, 8, 30):
        MessageLog.objects.create(
            tenant=cp.tenant, charge_point=cp, created_at=now - dt.timedelta(days=age), direction="in", kind=2
        )

    deleted = purge_message_log()

    assert deleted == 2
    assert sorted((now - row.created_at).days for row in MessageLog.objects.all()) == [1, 6]


def test_mark_offline_uses_heartbeat_interval_times_factor(settings: object) -> None:
    settings.OCPP_OFFLINE_FACTOR = 2  # type: ignore[attr-defined]
    now = timezone.now()
    quiet = ChargePointFactory(online=True, heartbeat_interval=60, last_seen_at=now - dt.timedelta(seconds=130))
    fresh = ChargePointFactory(online=True, heartbeat_interval=60, last_seen_at=now - dt.timedelta(seconds=100))
    slow = ChargePointFactory(online=True, heartbeat_interval=300, last_seen_at=now - dt.timedelta(seconds=500))

    assert mark_offline() == 1

    assert dict(ChargePoint.objects.values_list("identity", "online")) == {
        quiet.identity: False,
        fresh.identity: True,
        slow.identity: True,
    }
    assert list(StatusEvent.objects.values_list("charge_point_id", "status")) == [(quiet.pk, "Offline")]
