"""What starts a recompute: events that change the picture (debounced per site), and the admin site load view."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import Client
from django.utils import timezone

from apps.core import events
from apps.energy import services, subscribers, tasks
from apps.energy.models import NodeKind
from apps.sessions.models import SessionStatus
from apps.tenants.models import Role
from tests.charging.factories import ChargingSessionFactory
from tests.energy.factories import GridNodeFactory, GridSignalFactory
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The recompute tasks put on the broker (recorded instead of sent: the task itself is tested directly)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.site_recompute, "apply_async", lambda **kw: calls.append(kw))
    return calls


def test_a_burst_of_triggers_gives_one_recompute_per_site(enqueued: list[dict[str, Any]]) -> None:
    site_id = int(uuid.uuid4().int % 10**9) + 10**9  # a key nobody else uses in the shared Redis
    try:
        results = [tasks.recompute_debounced(site_id=site_id, trigger="meter") for _ in range(20)]
    finally:
        redis.Redis.from_url(settings.REDIS_URL).delete(f"energy:recompute:{site_id}")

    assert results == [True] + [False] * 19
    assert enqueued == [{"kwargs": {"site_id": site_id, "trigger": "meter"}, "countdown": 1.0}]


def _site_with_session() -> tuple[Any, Any, Any]:
    root = GridNodeFactory(max_current_a=32)
    cp = ChargePointFactory(tenant=root.tenant, location=root.location)
    ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=1), max_amperage=32)
    GridNodeFactory(
        tenant=root.tenant, location=root.location, parent=root, kind=NodeKind.CHARGE_POINT, charge_point=cp,
        max_current_a=None,
    )  # fmt: skip
    session = ChargingSessionFactory(charge_point=cp, connector_id=1, status=SessionStatus.ACTIVE)
    return root, cp, session


def test_meter_values_trigger_a_recompute_only_when_the_draw_moved(
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given a session allocated 22 kW
    root, cp, session = _site_with_session()
    services.site_recompute(site_id=root.pk, send=False)

    def meter(power_w: int | None) -> int:
        event = events.SessionMeterUpdated(
            tenant_id=cp.tenant_id, session_id=session.pk, charge_point_id=cp.pk, energy_wh=1000, power_w=power_w
        )
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            subscribers.session_meter_updated(event)
        return len(callbacks)

    # when meter values come in: close to the allocation, far below it, and without power
    # then only the one that changes the picture asks for a recompute
    assert [meter(21_500), meter(11_000), meter(None)] == [0, 1, 0]


def test_session_start_and_end_ask_for_a_recompute_of_their_site(django_capture_on_commit_callbacks: Any) -> None:
    _root, cp, session = _site_with_session()
    elsewhere = ChargePointFactory()  # not in any tree: nothing to do

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        subscribers.session_started(
            events.SessionStarted(tenant_id=cp.tenant_id, session_id=session.pk, charge_point_id=cp.pk)
        )
        subscribers.session_ended(
            events.SessionEnded(tenant_id=cp.tenant_id, session_id=session.pk, charge_point_id=cp.pk)
        )
        subscribers.session_started(
            events.SessionStarted(tenant_id=elsewhere.tenant_id, session_id=1, charge_point_id=elsewhere.pk)
        )

    assert len(callbacks) == 2


def test_the_next_boundary_is_the_next_signal_or_window_edge() -> None:
    root, _, _ = _site_with_session()
    now = timezone.now()
    GridSignalFactory(node=root, valid_from=now - dt.timedelta(minutes=1), valid_until=now + dt.timedelta(seconds=30))

    assert services.next_boundary(site_id=root.pk, after=now) == now + dt.timedelta(seconds=30)


def test_site_load_view_shows_the_tree_allocations_and_history(make_staff: Any) -> None:
    # given a site with one session after one recompute
    root, _cp, session = _site_with_session()
    services.site_recompute(site_id=root.pk, send=False)
    client = Client()
    client.force_login(make_staff(root.tenant, Role.OPERATIONS))

    # when its operator opens the site load view
    response = client.get(f"/admin/energy/gridnode/{root.pk}/load/")

    # then the tree, the session's allocation with its reason, and the chart data are there
    assert response.status_code == 200
    html = response.content.decode()
    assert root.name in html
    assert f"session {session.pk} (connector 1): 32.0 A" in html
    assert "all it can take" in html
    assert 'id="chart-data"' in html
    assert "vendor/chartjs/chart.umd.min.js" in html


def test_site_load_view_of_another_tenant_is_404(make_staff: Any) -> None:
    root, _, _ = _site_with_session()
    client = Client()
    client.force_login(make_staff(TenantFactory(), Role.ADMIN))

    response = client.get(f"/admin/energy/gridnode/{root.pk}/load/")

    assert response.status_code == 404


def test_a_trigger_after_a_run_started_enqueues_the_next_run(
    enqueued: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a site whose recompute was enqueued, and a second trigger of the same burst
    root, _cp, _session = _site_with_session()
    key = f"test:{uuid.uuid4().hex}:energy:recompute:{{site_id}}"  # apart from other test processes' sites
    monkeypatch.setattr(tasks, "_LOCK_KEY", key)
    try:
        first = tasks.recompute_debounced(site_id=root.pk, trigger="grid_signal")
        burst = tasks.recompute_debounced(site_id=root.pk, trigger="meter")

        # when the run starts, and a limit change commits while it works
        tasks.site_recompute.run(site_id=root.pk, trigger="grid_signal")
        after = tasks.recompute_debounced(site_id=root.pk, trigger="grid_signal")
    finally:
        redis.Redis.from_url(settings.REDIS_URL).delete(key.format(site_id=root.pk))

    # then the burst gave one run, and the later change gets its own instead of waiting for beat
    assert (first, burst, after) == (True, False, True)
    assert [c["kwargs"]["site_id"] for c in enqueued] == [root.pk, root.pk]


def test_site_load_view_names_a_grid_signals_end_in_the_sites_zone(make_staff: Any) -> None:
    # given a Berlin site under a DSO signal that ends tomorrow
    root, _cp, _session = _site_with_session()
    root.location.timezone = "Europe/Berlin"
    root.location.save(update_fields=["timezone"])
    now = timezone.now()
    until = (now + dt.timedelta(days=1)).replace(minute=30, second=0, microsecond=0)
    local = until.astimezone(zoneinfo.ZoneInfo("Europe/Berlin"))
    GridSignalFactory(node=root, source="DSO", valid_from=now - dt.timedelta(minutes=1), valid_until=until)
    client = Client()
    client.force_login(make_staff(root.tenant, Role.OPERATIONS))

    html = client.get(f"/admin/energy/gridnode/{root.pk}/load/").content.decode()

    # then its end reads in local time with the zone named, not as a raw ISO instant
    assert f"grid signal DSO until {local:%Y-%m-%d %H:%M} {local.tzname()}" in html  # CET or CEST
    assert local.tzname() in ("CET", "CEST")
    assert "+00:00" not in html
