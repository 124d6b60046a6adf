"""Where roaming meets authorization and sessions, over real HTTP (the partner simulator as the eMSP), real OCPP (a
simulated charger under daphne) and real PostgreSQL:

- a real-time authorization at the eMSP (seconds) runs before the StartTransaction's database transaction: no
  transaction, row lock or tag lock is held while the eMSP thinks, and one running session per token still holds;
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.roaming.models import RoamingPartner
from apps.roaming.partner_sim import PartnerSimulator
from apps.sessions import services as session_services
from apps.sessions.models import ChargingSession, SessionStatus
from tests.charging.factories import ChargingSessionFactory
from tests.roaming.conftest import ChargerThread, Site, wait_until
from tests.roaming.factories import registered

pytestmark = pytest.mark.slow


@pytest.fixture
def partner(ocpi_base: str, sim: PartnerSimulator, site: Site) -> RoamingPartner:
    return registered(ocpi_base, sim, site.tenant)


def authorize_calls(sim: PartnerSimulator, uid: str) -> int:
    return len([r for r in sim.received if r.path.startswith(f"/ocpi/emsp/2.2.1/tokens/{uid}/authorize")])


# --------------------------------------------------------------------------- 1. no transaction around the eMSP call


def test_a_slow_real_time_authorization_holds_no_transaction_and_blocks_no_writer(
    partner: RoamingPartner, sim: PartnerSimulator, site: Site, charger: Callable[..., ChargerThread]
) -> None:
    sim.authorizations["SLOWCARD1"] = {"allowed": "ALLOWED", "token": sim.token_object("SLOWCARD1", whitelist="NEVER")}
    sim.authorize_hold = hold = threading.Event()
    # a session on connector 1 whose StopTransaction never came: the next StartTransaction there closes it
    stale = ChargingSessionFactory(
        charge_point=site.charge_point,
        evse=site.evses[0],
        connector_id=1,
        status=SessionStatus.ACTIVE,
        started_at=timezone.now() - dt.timedelta(hours=1),
        last_meter_wh=0,
    )
    tag_key = f"{site.tenant.pk}:slowcard1"

    charger(connectors=1, id_tags=["SLOWCARD1"], idle_seconds=(0.2, 0.4), session_seconds=(120.0, 120.0))
    try:
        assert sim.authorize_waiting.wait(60), "the eMSP was not asked"
        hold.wait(2.0)  # the eMSP thinks for a while
        with connection.cursor() as cursor:
            # no backend of this database has had a transaction open for more than a second
            cursor.execute(
                "SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND xact_start < now() - interval '1 second'"
            )
            assert cursor.fetchall() == []
            cursor.execute(
                "SELECT l.locktype, l.mode, a.query FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE a.datname = current_database() AND l.pid <> pg_backend_pid()"
                " AND l.locktype IN ('advisory', 'tuple', 'transactionid')"
            )
            assert cursor.fetchall() == []
        with transaction.atomic():
            # another writer of the stale session (its MeterValues, say) is not blocked
            locked = ChargingSession.objects.select_for_update(nowait=True).get(pk=stale.pk)
            assert locked.status == SessionStatus.ACTIVE
            # nor another start of the same tag (the tag lock is taken after the eMSP answered)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_try_advisory_xact_lock(hashtext('charging.id_tag'), hashtext(%s))", [tag_key]
                )
                assert cursor.fetchone() == (True,)
    finally:
        hold.set()
        sim.authorize_hold = None

    session = wait_until(
        lambda: ChargingSession.objects.filter(id_tag="SLOWCARD1", status=SessionStatus.ACTIVE).first(),
        what="the session started with the eMSP's answer",
    )
    assert (session.auth_status, session.roaming_partner) == ("Accepted", "NL*SIM")
    stale.refresh_from_db()
    assert stale.status == SessionStatus.COMPLETED  # closed by the new start's evidence, after the eMSP answered
    assert authorize_calls(sim, "SLOWCARD1") == 1


def test_two_starts_of_one_token_during_a_slow_authorization_give_one_session_and_concurrent_tx(
    partner: RoamingPartner, sim: PartnerSimulator, site: Site
) -> None:
    sim.authorizations["TWINCARD"] = {"allowed": "ALLOWED", "token": sim.token_object("TWINCARD", whitelist="NEVER")}
    sim.authorize_hold = hold = threading.Event()
    answers: dict[int, Any] = {}
    errors: list[BaseException] = []
    now = timezone.now()

    def start(connector_id: int) -> None:
        try:
            answers[connector_id] = session_services.session_start(
                charge_point_id=site.charge_point.pk,
                connector_id=connector_id,
                id_tag="TWINCARD",
                meter_start=1000 * connector_id,
                timestamp=now + dt.timedelta(seconds=connector_id),
            )
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: authorize_calls(sim, "TWINCARD") == 2, what="both starts asking the eMSP at once")
    finally:
        hold.set()
        sim.authorize_hold = None
    for thread in threads:
        thread.join(60)

    assert errors == []
    statuses = sorted(info.status for _session, info in answers.values())
    assert statuses == ["Accepted", "ConcurrentTx"]
    running = ChargingSession.objects.filter(id_tag="TWINCARD", status=SessionStatus.ACTIVE)
    assert running.count() == 1
    loser = ChargingSession.objects.get(id_tag="TWINCARD", status=SessionStatus.INVALID)
    assert loser.auth_status == "ConcurrentTx"  # recorded (energy never lost), never running
