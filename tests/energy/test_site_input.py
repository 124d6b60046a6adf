"""The optimizer input built from the database: local-time windows, signal validity, building load, held sessions,
and a fixed number of queries whatever the size of the site."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from apps.energy import selectors, services
from apps.energy.models import GridNode, NodeKind
from apps.energy.optimizer import optimize
from apps.sessions.models import ChargingSession, SessionStatus
from apps.stations.models import ChargePoint, Location
from tests.charging.factories import ChargingSessionFactory
from tests.energy.factories import (
    BuildingLoadReadingFactory,
    GridNodeFactory,
    GridSignalFactory,
    TimeOfUseLimitFactory,
)
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory, LocationFactory
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db

# Monday 12 January 2026: Berlin is UTC+1
MONDAY_1730_BERLIN = dt.datetime(2026, 1, 12, 16, 30, tzinfo=dt.UTC)
MONDAY_1630_BERLIN = dt.datetime(2026, 1, 12, 15, 30, tzinfo=dt.UTC)


def _site(chargers: int = 1, **root: Any) -> tuple[GridNode, list[ChargePoint], Location]:
    tenant = TenantFactory()
    location = LocationFactory(tenant=tenant, timezone="Europe/Berlin")
    root_node = GridNodeFactory(tenant=tenant, location=location, **({"max_current_a": 63} | root))
    cps = []
    for _ in range(chargers):
        cp = ChargePointFactory(tenant=tenant, location=location)
        ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=1), max_amperage=32)
        GridNodeFactory(
            tenant=tenant,
            location=location,
            parent=root_node,
            kind=NodeKind.CHARGE_POINT,
            charge_point=cp,
            max_current_a=None,
        )
        cps.append(cp)
    return root_node, cps, location


def _session(cp: ChargePoint, **fields: Any) -> ChargingSession:
    fields = {"status": SessionStatus.ACTIVE, "started_at": MONDAY_1630_BERLIN} | fields
    return ChargingSessionFactory(charge_point=cp, connector_id=1, **fields)


def _allocated(root: GridNode, at: dt.datetime) -> tuple[tuple[float, float, float], dict[str, float]]:
    inp = selectors.site_input(site_id=root.pk, at=at)
    result = optimize(inp.site, inp.sessions, at=at)
    limit = result.nodes[selectors.node_id(root.pk)].limit_a
    return limit, {k: v.level_a for k, v in result.sessions.items()}


def test_time_of_use_windows_apply_in_the_sites_local_time() -> None:
    # given weekdays 17:00-20:00 at 50 % on a 63 A site in Berlin
    root, _, _ = _site()
    TimeOfUseLimitFactory(node=root, percent=50)

    # when the limit is read at 16:30 and at 17:30 Berlin time (15:30 / 16:30 UTC)
    before, _ = _allocated(root, MONDAY_1630_BERLIN)
    during, _ = _allocated(root, MONDAY_1730_BERLIN)

    # then only the second is in the window
    assert before == (63.0, 63.0, 63.0)
    assert during == (31.5, 31.5, 31.5)


def test_grid_signals_apply_only_inside_their_validity_window() -> None:
    # given a 20 A signal valid for one hour from 16:30 UTC
    root, cps, _ = _site()
    session = _session(cps[0])
    GridSignalFactory(
        node=root,
        max_power_w=None,
        max_current_a=20,
        valid_from=MONDAY_1730_BERLIN,
        valid_until=MONDAY_1730_BERLIN + dt.timedelta(hours=1),
    )

    # when read before, inside, and at the (exclusive) end of the window
    before = _allocated(root, MONDAY_1730_BERLIN - dt.timedelta(seconds=1))
    inside = _allocated(root, MONDAY_1730_BERLIN)
    expired = _allocated(root, MONDAY_1730_BERLIN + dt.timedelta(hours=1))

    # then only inside it curtails the site and its session
    assert before == ((63.0, 63.0, 63.0), {str(session.pk): 32.0})
    assert inside == ((20.0, 20.0, 20.0), {str(session.pk): 20.0})
    assert expired == ((63.0, 63.0, 63.0), {str(session.pk): 32.0})


def test_fresh_building_load_is_subtracted_and_a_stale_reading_ignored() -> None:
    # given a 40 A site with one car and 10 A per phase of building load measured 5 min ago
    root, cps, _ = _site(max_current_a=40)
    session = _session(cps[0])
    at = MONDAY_1730_BERLIN
    BuildingLoadReadingFactory(
        node=root, at=at - dt.timedelta(minutes=5), power_w=None, current_l1_a=10, current_l2_a=10, current_l3_a=10
    )
    BuildingLoadReadingFactory(node=root, at=at - dt.timedelta(minutes=30), power_w=20_000)  # older: ignored

    # when allocated now, and 20 minutes later (the reading is stale by then)
    _, now = _allocated(root, at)
    _, later = _allocated(root, at + dt.timedelta(minutes=20))

    # then the car gets what the building leaves, then its full 32 A
    assert now == {str(session.pk): 30.0}
    assert later == {str(session.pk): 32.0}


def test_a_session_held_at_zero_by_its_contract_is_fixed_at_zero_and_not_commanded() -> None:
    # given two cars; one is held at 0 A by its contract limit (the sessions app sent its 0 A profile)
    root, cps, _ = _site(chargers=2, max_current_a=40)
    running = _session(cps[0])
    held = _session(
        cps[1], limit_action="zero_current", limit_reached_at=MONDAY_1630_BERLIN, status=SessionStatus.SUSPENDED
    )

    # when the site is recomputed
    outcome = services.site_recompute(site_id=root.pk, at=MONDAY_1730_BERLIN, send=False)

    # then the held one gets 0 and no profile, and the other gets the room
    levels = {k: v.level_a for k, v in outcome.result.sessions.items()}
    assert levels == {str(running.pk): 32.0, str(held.pk): 0.0}
    assert [(o.purpose, o.transaction_id) for o in outcome.orders if o.purpose == "TxProfile"] == [
        ("TxProfile", running.pk)
    ]
    rows = dict(outcome.recompute.allocations.values_list("session_id", "reason"))
    assert rows == {running.pk: "at_maximum", held.pk: "held_at_zero"}


@pytest.mark.parametrize("chargers", [2, 6])
def test_the_input_takes_a_fixed_number_of_queries(chargers: int, django_assert_num_queries: Any) -> None:
    # given a site with N chargers, each with a session, a window, a signal and building load
    root, cps, _ = _site(chargers=chargers)
    for cp in cps:
        _session(cp)
    TimeOfUseLimitFactory(node=root)
    GridSignalFactory(node=root, valid_from=MONDAY_1630_BERLIN, valid_until=MONDAY_1730_BERLIN)
    BuildingLoadReadingFactory(node=root, at=MONDAY_1630_BERLIN)

    # when the input is built, then it takes the same number of queries whatever N
    with django_assert_num_queries(8):
        inp = selectors.site_input(site_id=root.pk, at=MONDAY_1630_BERLIN)
    assert len(inp.sessions) == chargers


def test_a_session_noted_as_ended_gets_no_share_and_no_profile() -> None:
    # given two sessions; the charger of one rebooted (its end is noted, it closes after the grace period)
    root, cps, _ = _site(chargers=2, max_current_a=40)
    running = _session(cps[0])
    _session(cps[1], end_evidence="boot", end_evidence_at=MONDAY_1630_BERLIN)

    # when the site is recomputed
    outcome = services.site_recompute(site_id=root.pk, at=MONDAY_1730_BERLIN, send=False)

    # then only the running one is allocated and commanded
    assert list(outcome.result.sessions) == [str(running.pk)]
    assert [o.transaction_id for o in outcome.orders if o.purpose == "TxProfile"] == [running.pk]
