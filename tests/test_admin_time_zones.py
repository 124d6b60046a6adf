"""Every admin list shows its dates in the user's time zone with the zone named.

The walker opens the changelist of every registered admin over a tenant with a full history (tests/history_world.py:
a row of every model), as the platform superuser whose browser reports America/New_York (the `evp_tz` cookie), and
checks that each date column shows every listed row's date in New York time with "EST"/"EDT", and that no date
on any list is rendered the Django way without a zone ("Dec. 4, 2026, 2:31 p.m.")."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

import pytest
from django.db import models
from django.test import Client
from django.urls import reverse

from apps.core.models import OutboxDelivery
from apps.tenants.models import Tenant
from tests.history_world import World, build_world
from tests.walker import registered_admins

pytestmark = pytest.mark.django_db

ZONE = "America/New_York"
DJANGO_DATETIME = re.compile(r"\b[A-Z][a-z]{2,8}\.? \d{1,2}, \d{4}, \d{1,2}(:\d{2})? ?[ap]\.m\.")


@pytest.fixture
def world(tenant_a: Tenant) -> World:
    world = build_world(tenant_a)
    # the outbox is drained as events are delivered: one row in it, as a queue holds between deliveries
    OutboxDelivery.objects.create(
        event_type="session.completed", subject="charging.chargingsession:1", subscriber="tests.subscriber",
        tenant_id=tenant_a.pk, payload={}, delivered_at=dt.datetime(2026, 1, 15, 23, 30, tzinfo=dt.UTC),
    )  # fmt: skip
    # dates the world leaves empty, so that every list with a date column has one to show
    at = dt.datetime(2026, 7, 4, 3, 5, tzinfo=dt.UTC)
    for row, field in (
        (world.token, "expires_at"), (world.charge_point, "last_seen_at"), (world.evse, "status_at"),
        (world.location, "decommissioned_at"), (world.tariff_assignment, "valid_from"), (world.api_key, "last_used_at"),
    ):  # fmt: skip
        type(row)._default_manager.filter(pk=row.pk).update(**{field: at})
    return world


def _date_columns(model: type[models.Model], model_admin: Any, request: Any) -> list[str]:
    columns = []
    for name in model_admin.get_list_display(request):
        try:
            field = model._meta.get_field(name) if isinstance(name, str) else None
        except Exception:  # noqa: BLE001 - a method or callable column
            field = None
        if isinstance(field, models.DateTimeField):
            columns.append(name)
    return columns


def _shown(value: dt.datetime) -> str:
    local = value.astimezone(zoneinfo.ZoneInfo(ZONE))
    utc = value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    title = f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
    return f'<time datetime="{utc}" title="{title}">{local:%Y-%m-%d %H:%M} {local.tzname()}</time>'


def test_every_admin_list_shows_dates_in_the_users_zone_with_the_zone_named(world: World, superuser: Any) -> None:
    client = Client()
    client.force_login(superuser)
    client.cookies["evp_tz"] = ZONE
    checked: list[str] = []
    missing: list[str] = []
    for model, model_admin in registered_admins():
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert not DJANGO_DATETIME.search(page), f"{url}: a date without its zone: {DJANGO_DATETIME.search(page)}"
        request = response.wsgi_request
        columns = _date_columns(model, model_admin, request)
        if not columns:
            continue
        rows = list(response.context["cl"].result_list)
        values = [getattr(row, name) for row in rows for name in columns if getattr(row, name) is not None]
        if not values:
            missing.append(f"{opts.label}: {columns}")
            continue
        for value in values:
            assert _shown(value) in page, f"{url}: {value.isoformat()} not shown as {_shown(value)}"
        checked.append(opts.label)
    assert missing == [], f"no row shows a date in these lists: give tests/history_world.py one: {missing}"
    assert len(checked) >= 25, checked  # the walker reached the lists (a broken registry would check none)
