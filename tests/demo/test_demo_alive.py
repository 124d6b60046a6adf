"""The demo `make run` shows is alive without hand work: the Procfile's simulated chargers use a card per connector
that the demo data knows (no start refused), each demo site has a tree with limits and a time-of-use window, every
alert rule is on and the depot charger's silence opens an alert; and, against a real server, the six simulated
chargers all charge at once and accept the profiles the smart-charging loop sends, under the site's limit."""

from __future__ import annotations

import asyncio
import datetime as dt
import shlex
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from apps.analytics import rules
from apps.analytics.models import Alert, AlertKind, AlertRule
from apps.customers.models import Token
from apps.customers.services import token_authorize
from apps.demo.services import seed_demo
from apps.demo.stations_demo import CONNECTORS_PER_CHARGER, demo_charger_ids, depot_charger_id
from apps.energy import selectors as energy_selectors
from apps.energy import tasks as energy_tasks
from apps.energy.models import ChargePointProfileState, GridNode, NodeKind, SiteRecompute, TimeOfUseLimit
from apps.energy.optimizer import optimize
from apps.ocpp.simulator import SimConfig, run_charger
from apps.sessions.models import ChargingSession, SessionStatus
from apps.stations.models import ChargePoint
from apps.tenants.models import Tenant
from tests.ocpp.conftest import db, server, wait_for  # noqa: F401 (fixtures)

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"
DEMO_TENANTS = ("voltnet", "fjord")


def procfile_sim() -> dict[str, str]:
    """The options the Procfile gives the simulated chargers of `make run`."""
    line = next(line for line in PROCFILE.read_text().splitlines() if line.startswith("sim:"))
    words = shlex.split(line.split("&&", 1)[1])
    return {word: words[n + 1] for n, word in enumerate(words) if word.startswith("--")}


def counts() -> dict[str, int]:
    models = (GridNode, TimeOfUseLimit, AlertRule, Token, ChargePoint)
    return {model.__name__: model.objects.count() for model in models}


def test_every_simulated_connector_has_its_own_card_that_the_demo_accepts(db: None) -> None:
    seed_demo()
    sim = procfile_sim()
    ids = sim["--ids"].split(",")
    connectors = int(sim.get("--connectors", "2"))
    tenants = {t.slug: t for t in Tenant.objects.filter(slug__in=DEMO_TENANTS)}

    assert ids == [i for slug in DEMO_TENANTS for i in demo_charger_ids(tenants[slug])]
    assert connectors == CONNECTORS_PER_CHARGER
    tags = [sim["--id-tag-template"].format(identity=i, connector=c) for i in ids for c in range(1, connectors + 1)]
    assert len(set(tags)) == len(tags) == 12
    for tag in tags:
        tenant = ChargePoint.objects.get(identity=tag.split("-", 1)[1].rsplit("-", 1)[0]).tenant
        result = token_authorize(tenant=tenant, id_tag=tag)
        assert (tag, result.status) == (tag, "Accepted")
        assert len(tag) <= 20  # an OCPP 1.6 idTag


def test_each_demo_site_has_a_tree_with_limits_and_a_time_of_use_window(db: None) -> None:
    seed_demo()
    first = counts()
    seed_demo()
    assert counts() == first  # idempotent

    for slug in DEMO_TENANTS:
        tenant = Tenant.objects.get(slug=slug)
        root = GridNode.objects.get(tenant=tenant, parent__isnull=True, kind=NodeKind.GRID_CONNECTION)
        assert root.max_power_w or root.max_current_a
        window = TimeOfUseLimit.objects.get(node=root)
        assert window.weekdays == [0, 1, 2, 3, 4, 5, 6]
        assert 0 < (window.percent or 0) < 100
        leaves = GridNode.objects.filter(tenant=tenant, kind=NodeKind.CHARGE_POINT)
        assert sorted(leaves.values_list("charge_point__identity", flat=True)) == demo_charger_ids(tenant)
        assert GridNode.objects.filter(tenant=tenant, kind=NodeKind.SUB_DISTRIBUTION, parent=root).count() == 1
        assert energy_selectors.site_root_ids().count(root.pk) == 1  # the beat recomputes it

        # the window lowers the root's limit while it is in force, in the site's local time
        inside = _root_limit_w(root, _local(tenant, (window.start.hour + 1) % 24))
        outside = _root_limit_w(root, _local(tenant, (window.end.hour + 2) % 24))
        assert round(inside) == round(outside * (window.percent or 0) / 100)


def _root_limit_w(root: GridNode, at: dt.datetime) -> float:
    inp = energy_selectors.site_input(site_id=root.pk, at=at)
    result = optimize(inp.site, inp.sessions, at=at, config=inp.config)
    node = result.nodes[energy_selectors.node_id(root.pk)]
    return node.limit_w if node.limit_w != float("inf") else sum(node.limit_a) * root.voltage_v


def _local(tenant: Tenant, hour: int) -> dt.datetime:
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    return dt.datetime.combine(timezone.localdate(timezone=zone), dt.time(hour), tzinfo=zone)


def test_every_alert_rule_is_on_and_the_quiet_depot_charger_opens_an_alert(db: None) -> None:
    seed_demo()
    rules.alerts_evaluate()

    for slug in DEMO_TENANTS:
        tenant = Tenant.objects.get(slug=slug)
        kinds = set(AlertRule.objects.filter(tenant=tenant, enabled=True).values_list("kind", flat=True))
        assert kinds == set(AlertKind.values)
        depot = ChargePoint.objects.get(identity=depot_charger_id(tenant))
        open_alerts = Alert.objects.filter(tenant=tenant, status="open")
        assert list(open_alerts.values_list("kind", "charge_point_id")) == [(AlertKind.CHARGER_OFFLINE, depot.pk)]
        # the depot is a site of its own: every charger of the simulated site charges
        assert depot.location_id not in set(
            ChargePoint.objects.filter(identity__in=demo_charger_ids(tenant)).values_list("location_id", flat=True)
        )


@pytest.mark.django_db(transaction=True)
async def test_the_demo_chargers_all_charge_and_accept_the_site_profiles_under_its_limit(
    server: str,  # noqa: F811
) -> None:
    await db(seed_demo)()
    sim = procfile_sim()
    ids = sim["--ids"].split(",")
    config = SimConfig(
        url=server,
        password=sim["--password"],
        id_tag_template=sim["--id-tag-template"],
        power_w=int(sim["--power-w"]),
        connectors=CONNECTORS_PER_CHARGER,
        heartbeat=30,
        meter_interval=0.5,
        session_seconds=(600, 600),
        idle_seconds=(0.1, 0.5),
    )
    live = ChargingSession.objects.filter(started_at__gte=timezone.now())  # not the seeded history
    stop = asyncio.Event()
    chargers = [asyncio.create_task(run_charger(identity, config, stop)) for identity in ids]
    try:
        # every connector of every simulated charger charges (12 sessions, none refused)
        await wait_for(db(lambda: live.filter(status=SessionStatus.ACTIVE).count() == 12), timeout=60)
        roots = await db(lambda: list(GridNode.objects.filter(parent__isnull=True, kind="grid_connection")))()
        for root in roots:
            await db(energy_tasks.site_recompute)(root.pk)
        states = await db(lambda: list(ChargePointProfileState.objects.values_list("purpose", "status")))()
        recomputes = await db(lambda: list(SiteRecompute.objects.order_by("pk").values("limit_w", "allocated_w")))()
        power: dict[str, Any] = {}
        await asyncio.sleep(2)  # a few samples at the allocated power
        for identity in ids:
            power[identity] = await db(_last_power)(identity)
    finally:
        stop.set()
        for task in chargers:
            task.cancel()
        await asyncio.gather(*chargers, return_exceptions=True)

    refused = await db(lambda: live.exclude(status=SessionStatus.ACTIVE).count())()
    detail = await db(  # what was refused, if anything
        lambda: list(
            live.exclude(status=SessionStatus.ACTIVE).values_list("status", "id_tag", "stop_reason", "auth_status")[:20]
        )
    )()
    assert refused == 0, detail
    tx_profiles = [status for purpose, status in states if purpose == "TxProfile"]
    assert tx_profiles == ["accepted"] * 12
    assert {status for _, status in states} == {"accepted"}
    assert recomputes
    assert all(r["limit_w"] and 0 < r["allocated_w"] <= r["limit_w"] for r in recomputes)
    assert all(0 < p <= int(sim["--power-w"]) for p in power.values()), power
    # four AC connectors share the AC board's 32 A: the TxProfile holds them below the 11 kW they would draw
    assert power["VLT-SIM-01"] < int(sim["--power-w"]), power


def _last_power(identity: str) -> int:
    from apps.sessions.models import MeterValue

    value = (
        MeterValue.objects.filter(charge_point__identity=identity, measurand="Power.Active.Import")
        .order_by("-timestamp")
        .values_list("value", flat=True)
        .first()
    )
    return int(value or 0)
