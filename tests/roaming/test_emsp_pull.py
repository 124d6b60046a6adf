"""Pulling a CPO partner's Sender interfaces (apps/roaming/ocpi/pull.py) over real HTTP from the CPO simulator: the
pages are followed (Link, X-Total-Count, X-Limit), the next pull asks only what changed since the last one
(date_from), a full resync refreshes everything and withdraws what the CPO no longer lists, bad objects are skipped
and counted, and the beat sweep, the admin action and the API action run it through a real Celery worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from apps.roaming import tasks
from apps.roaming.cpo_sim import CpoSimulator
from apps.roaming.models import PullState, RoamingPartner
from apps.roaming.ocpi import pull
from apps.sessions.models import PartnerCdr, PartnerSession
from apps.stations.models import PartnerEvse, PartnerLocation
from apps.tariffs.models import PartnerTariff
from apps.tenants.models import Role, Tenant
from tests.roaming import emsp_rig as rig
from tests.roaming.conftest import wait_until
from tests.roaming.factories import partner_for


@pytest.fixture
def cpo() -> Iterator[CpoSimulator]:
    simulator = CpoSimulator(country_code="NL", party_id="CPO", page_limit=2).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def partner(ocpi_base: str, cpo: CpoSimulator, tenant_a: Tenant) -> RoamingPartner:
    return rig.cpo_registered(ocpi_base, cpo, tenant_a)


def stamp(minutes: int) -> str:
    return (dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=minutes)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def fill(cpo: CpoSimulator, locations: int = 5, tariffs: int = 3) -> None:
    for n in range(locations):
        cpo.cpo_locations[f"NL/CPO/L{n}"] = rig.location(cpo, f"L{n}", last_updated=stamp(n))
    for n in range(tariffs):
        cpo.cpo_tariffs[f"NL/CPO/T{n}"] = rig.tariff(cpo, f"T{n}", last_updated=stamp(n))


def list_gets(cpo: CpoSimulator, module: str) -> list[dict[str, list[str]]]:
    return [
        parse_qs(urlsplit(r.path).query)
        for r in cpo.received
        if r.method == "GET" and urlsplit(r.path).path.rstrip("/").endswith(f"/cpo/2.2.1/{module}")
    ]


def test_the_pull_follows_the_pages_then_asks_only_what_changed(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    fill(cpo)

    first = pull.pull_module(partner=partner, module="locations")

    assert (first.received, first.stored, first.pages, first.refused) == (5, 5, 3, 0)
    assert sorted(PartnerLocation.objects.filter(partner=partner).values_list("ocpi_id", flat=True)) == [
        f"L{n}" for n in range(5)
    ]
    assert [q.get("offset") for q in list_gets(cpo, "locations")] == [None, ["2"], ["4"]]
    state = PullState.objects.get(partner=partner, module="locations")
    assert state.last_success_at is not None
    assert state.synced_from is not None

    # the CPO changes one location; the next pull sends date_from and gets only that one
    cpo.cpo_locations["NL/CPO/L1"] = rig.location(cpo, "L1", name="Renamed", last_updated=ocpi_now())
    second = pull.pull_module(partner=partner, module="locations")

    assert (second.received, second.stored) == (1, 1)
    assert list_gets(cpo, "locations")[-1]["date_from"] == [pull.ocpi_datetime(state.synced_from)]
    assert PartnerLocation.objects.get(partner=partner, ocpi_id="L1").name == "Renamed"


def ocpi_now() -> str:
    return timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")


def test_without_a_link_header_the_total_count_drives_the_next_page(
    partner: RoamingPartner, cpo: CpoSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(cpo, locations=3)
    original = cpo._reply

    def no_link(handler: Any, status: int, data: Any = None, *args: Any, headers: Any = None, **kw: Any) -> None:
        original(handler, status, data, *args, headers={k: v for k, v in (headers or {}).items() if k != "Link"}, **kw)

    monkeypatch.setattr(cpo, "_reply", no_link)

    result = pull.pull_module(partner=partner, module="locations")

    assert (result.received, result.pages) == (3, 2)
    assert PartnerLocation.objects.count() == 3


def test_a_full_resync_refreshes_everything_and_withdraws_what_the_cpo_no_longer_lists(
    partner: RoamingPartner, cpo: CpoSimulator
) -> None:
    fill(cpo)
    pull.pull_partner(partner_id=partner.pk)
    del cpo.cpo_locations["NL/CPO/L3"]
    del cpo.cpo_tariffs["NL/CPO/T0"]

    results = {r.module: r for r in pull.pull_partner(partner_id=partner.pk, full=True)}

    assert (results["locations"].received, results["locations"].removed) == (4, 1)
    assert (results["tariffs"].received, results["tariffs"].removed) == (2, 1)
    assert "date_from" not in list_gets(cpo, "locations")[-2]  # the full pull's first page
    statuses = dict(PartnerEvse.objects.values_list("location__ocpi_id", "status"))
    assert statuses == {"L0": "AVAILABLE", "L1": "AVAILABLE", "L2": "AVAILABLE", "L3": "REMOVED", "L4": "AVAILABLE"}
    assert PartnerEvse.objects.get(location__ocpi_id="L3").data["status"] == "REMOVED"
    assert sorted(PartnerTariff.objects.values_list("ocpi_id", flat=True)) == ["T1", "T2"]


def test_sessions_and_cdrs_are_pulled_and_a_cdr_is_stored_once(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    cpo.cpo_sessions["NL/CPO/S1"] = rig.session(cpo, "S1")
    cpo.cpo_cdrs["NL/CPO/CDR1"] = rig.cdr(cpo, "CDR1")
    cpo.cpo_cdrs["NL/CPO/CDR2"] = rig.cdr(cpo, "CDR2", last_updated=stamp(90))

    pull.pull_partner(partner_id=partner.pk)
    again = {r.module: r for r in pull.pull_partner(partner_id=partner.pk, full=True)}

    assert PartnerSession.objects.get().ocpi_id == "S1"
    assert sorted(PartnerCdr.objects.values_list("ocpi_id", flat=True)) == ["CDR1", "CDR2"]
    assert PartnerCdr.objects.get(ocpi_id="CDR1").session == PartnerSession.objects.get()
    assert (again["cdrs"].received, again["cdrs"].stored) == (2, 0)


def test_bad_objects_are_skipped_and_counted_the_rest_stored(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    fill(cpo, locations=3)
    cpo.cpo_locations["NL/CPO/BAD"] = {**rig.location(cpo, "BAD", last_updated=stamp(1)), "address": None}
    cpo.cpo_locations["NL/CPO/XYZ"] = {
        **rig.location(cpo, "XYZ", last_updated=stamp(2)),
        "country_code": "DE",
        "party_id": "XYZ",
    }

    result = pull.pull_module(partner=partner, module="locations")

    assert (result.received, result.stored, result.refused) == (5, 3, 2)
    assert sorted(PartnerLocation.objects.values_list("ocpi_id", flat=True)) == ["L0", "L1", "L2"]
    error = PullState.objects.get(partner=partner, module="locations").last_error
    assert "location.address" in error
    assert "not a party you registered" in error


def test_a_failed_pull_keeps_its_date_from_and_records_the_error(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    fill(cpo, locations=1)
    pull.pull_module(partner=partner, module="locations")
    synced = PullState.objects.get(partner=partner, module="locations").synced_from
    cpo.fail_status = 503

    results = pull.pull_partner(partner_id=partner.pk, modules=["locations"])

    assert "HTTP 503" in results[0].errors[0]
    state = PullState.objects.get(partner=partner, module="locations")
    assert state.synced_from == synced
    assert "HTTP 503" in state.last_error
    assert PartnerLocation.objects.count() == 1


def test_a_partner_that_pushes_is_not_pulled_on_the_schedule(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    assert sorted(m for p, m in pull.due() if p == partner.pk) == ["cdrs", "locations", "sessions", "tariffs"]

    answer = cpo.push("locations", "/NL/CPO/LOC1", rig.location(cpo))
    assert answer["status_code"] == 1000
    pull.pull_module(partner=partner, module="tariffs")

    assert sorted(m for p, m in pull.due() if p == partner.pk) == ["cdrs", "sessions"]
    later = timezone.now() + pull.interval() + dt.timedelta(seconds=1)
    assert sorted(m for p, m in pull.due(later) if p == partner.pk) == ["cdrs", "locations", "sessions", "tariffs"]


def test_the_beat_sweep_pulls_through_a_celery_worker(
    partner: RoamingPartner, cpo: CpoSimulator, celery_worker: str
) -> None:
    fill(cpo, locations=3, tariffs=2)

    assert tasks.pull_sweep() == 1

    wait_until(lambda: PartnerLocation.objects.count() == 3 and PartnerTariff.objects.count() == 2, what="the pull")
    wait_until(lambda: PullState.objects.filter(partner=partner, last_success_at__isnull=False).count() == 4)
    assert tasks.pull_sweep() == 0  # nothing due until the interval has passed


def test_the_admin_action_and_the_api_pull_in_full(
    partner: RoamingPartner,
    cpo: CpoSimulator,
    celery_worker: str,
    make_staff: Callable[..., Any],
    client_for: Callable[..., Any],
    tenant_b: Tenant,
) -> None:
    fill(cpo, locations=2, tariffs=1)
    client = Client()
    client.force_login(make_staff(partner.tenant, Role.ADMIN, is_staff=True))

    page = client.post(
        "/admin/roaming/roamingpartner/", {"action": "pull_resync", "_selected_action": [partner.pk]}, follow=True
    )

    assert page.status_code == 200
    assert "pulling locations, tariffs, sessions, cdrs" in page.content.decode()
    wait_until(lambda: PartnerLocation.objects.count() == 2, what="the admin's pull")

    cpo.cpo_locations["NL/CPO/L9"] = rig.location(cpo, "L9", last_updated=stamp(0))  # older than date_from: only full
    answer = client_for(partner.tenant).post(f"/api/v1/roaming-partners/{partner.pk}/pull/", {}, format="json")
    assert (answer.status_code, answer.json()) == (202, {"modules": ["locations", "tariffs", "sessions", "cdrs"]})
    wait_until(lambda: PartnerLocation.objects.count() == 3, what="the API's pull")

    other = client_for(tenant_b).post(f"/api/v1/roaming-partners/{partner.pk}/pull/", {}, format="json")
    assert other.status_code == 404


def test_a_partner_we_do_not_play_emsp_for_cannot_be_pulled(
    ocpi_base: str, tenant_a: Tenant, client_for: Callable[..., Any]
) -> None:
    emsp_partner, _ = partner_for(tenant_a)

    answer = client_for(tenant_a).post(f"/api/v1/roaming-partners/{emsp_partner.pk}/pull/", {}, format="json")

    assert answer.status_code == 409
    assert answer.json()["code"] == "not_registered"
