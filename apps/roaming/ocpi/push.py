"""Pushes to partners' Receiver interfaces (we are Sender): EVSE status PATCHes after a StatusNotification, the
CDR of a partner's driver POSTed once after the session ended (its answer's Location header kept in `remote_url`),
sessions of its drivers, and every edit of our network and tariffs. Object keys of `PushState` and what they send:
`evse:<pk>` PATCH {status, last_updated} (REMOVED when decommissioned); `evse-put:<pk>` PUT the EVSE with its
connectors; `location:<pk>` PUT the whole Location; `tariff:<pk>` PUT the tariff, or DELETE it where it was sent
(`remote_url`) once the partner no longer sees it; `session:<pk>` PUT then PATCH; `cdr:<pk>` POST once. `full_sync`
queues every location and visible tariff for one partner (after its registration, reinstatement, or on request).

Flow: the outbox delivers `ConnectorStatusChanged` to `apps.roaming.subscribers.connector_status_changed`, which
bumps one `PushState` row per (partner, EVSE) in the delivery's transaction and, after its commit, sends the Celery
task `roaming.push_partner` for each partner concerned. The task sends, per partner, the pending objects in the order
they were first changed, each with its CURRENT state (coalescing: five changes while the partner was down are one
PATCH with the latest status), one object at a time under a row lock (ordered per partner and object). A failure
stops that partner's round (it is down: no flooding), records the error on the partner (`last_errors`) and the row
(`attempts`, `next_attempt_at` with exponential backoff), and the task comes back at that time; beat's
`roaming.push_sweep` catches a lost task. An acknowledged push sets `pushed_version` to the version it sent and
`last_pushes` on the partner.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.customers.models import Token
from apps.roaming import cpo_selectors, emsp_tokens, services
from apps.roaming.models import Module, PartnerStatus, PushState, RoamingPartner
from apps.roaming.ocpi import client, objects
from apps.roaming.ocpi import emsp_tokens as emsp_token_objects
from apps.roaming.ocpi.transport import ocpi_datetime
from apps.sessions.models import RUNNING_STATUSES, Cdr, ChargingSession
from apps.stations.models import Connector, Evse
from apps.tariffs import selectors as tariff_selectors

logger = logging.getLogger(__name__)

RETRY_BASE_S = 5.0
RETRY_MAX_S = 600.0
BATCH = 200  # objects per task run: a full resync of 10,000 locations is 50 runs, other partners' tasks in between

_BUMP = """
INSERT INTO roaming_pushstate (partner_id, module, object_key, version, pushed_version, attempts, last_error,
                               remote_url, changed_at)
VALUES {rows}
ON CONFLICT (partner_id, module, object_key)
DO UPDATE SET version = roaming_pushstate.version + 1, changed_at = EXCLUDED.changed_at
"""


def receivers(*, tenant_id: int, module: str) -> list[RoamingPartner]:
    """The tenant's registered partners that take `module` pushes (enabled, with a RECEIVER endpoint of theirs)."""
    partners = RoamingPartner.objects.filter(
        tenant_id=tenant_id, status=PartnerStatus.REGISTERED, enabled_modules__contains=[module]
    )
    return [p for p in partners if p.endpoint_url(module, "RECEIVER")]


def changed(
    *, partners: list[RoamingPartner], module: str, keys: list[str], once: bool = False, at_once: bool = False
) -> None:
    """Record that these objects changed (one statement), and send the push task of each partner after commit.
    `once`: an immutable object (a CDR), sent once per partner: a repeated event adds nothing. `at_once`: a change
    the meter-update throttle must not hold back (a session's end): a row waiting for the throttle's interval is due
    now (a row backing off after a failed push keeps its backoff)."""
    if not partners or not keys:
        return
    now = timezone.now()
    rows = [(p.pk, module, key, now) for p in partners for key in keys]
    statement = _BUMP.format(rows=", ".join(["(%s, %s, %s, 1, 0, 0, '', '', %s)"] * len(rows)))
    if once:
        statement = statement[: statement.index("DO UPDATE")] + "DO NOTHING"
    elif at_once:
        statement += (
            ", next_attempt_at = CASE WHEN roaming_pushstate.attempts = 0 THEN NULL"
            " ELSE roaming_pushstate.next_attempt_at END"
        )
    with connection.cursor() as cursor:
        cursor.execute(statement, [value for row in rows for value in row])
    for partner in partners:
        transaction.on_commit(functools.partial(_enqueue, partner.pk), robust=True)


def tariffs_changed(*, partner: RoamingPartner, tariff_ids: list[int]) -> None:
    """The set of tariffs one partner sees changed (its chosen tariffs): each one gained or lost is pushed to it."""
    if partner.status == PartnerStatus.REGISTERED and partner in receivers(
        tenant_id=partner.tenant_id, module=Module.TARIFFS
    ):
        changed(partners=[partner], module=Module.TARIFFS, keys=[f"tariff:{pk}" for pk in tariff_ids])


_FULL_SYNC_LOCATIONS = """
INSERT INTO roaming_pushstate (partner_id, module, object_key, version, pushed_version, attempts, last_error,
                               remote_url, changed_at, next_attempt_at)
SELECT %(partner)s, %(module)s, 'location:' || l.id, 1, 0, 0, '', '', %(now)s, NULL
FROM stations_location l
WHERE l.tenant_id = %(tenant)s AND l.publish
ORDER BY l.id
ON CONFLICT (partner_id, module, object_key)
DO UPDATE SET version = roaming_pushstate.version + 1, changed_at = EXCLUDED.changed_at, next_attempt_at = NULL
"""


# our own tokens to a CPO we are eMSP for (the same set as the tokens Sender's GET list)
_FULL_SYNC_TOKENS = """
INSERT INTO roaming_pushstate (partner_id, module, object_key, version, pushed_version, attempts, last_error,
                               remote_url, changed_at, next_attempt_at)
SELECT %(partner)s, %(module)s, 'token:' || t.id, 1, 0, 0, '', '', %(now)s, NULL
FROM customers_token t
WHERE t.tenant_id = %(tenant)s AND t.source = 'local'
ORDER BY t.id
ON CONFLICT (partner_id, module, object_key)
DO UPDATE SET version = roaming_pushstate.version + 1, changed_at = EXCLUDED.changed_at, next_attempt_at = NULL
"""


def locations_resend(*, partners: list[RoamingPartner]) -> None:
    """Every published location queued again for these partners (one statement each): what applies at all of them
    changed (a tariff assignment: the connectors' tariff_ids). Coalesced with any pending push of the same object."""
    for partner in partners:
        if _queue_locations(partner):
            transaction.on_commit(functools.partial(_enqueue, partner.pk), robust=True)


def _queue_locations(partner: RoamingPartner) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            _FULL_SYNC_LOCATIONS,
            {"partner": partner.pk, "module": Module.LOCATIONS, "tenant": partner.tenant_id, "now": timezone.now()},
        )
        return int(cursor.rowcount)


def full_sync(*, partner: RoamingPartner) -> int:
    """Every published location (one statement, rows made by the database: 10,000 locations are one INSERT) and
    every tariff the partner sees, queued for a PUT to a registered partner with those receivers; a backoff in
    progress is cut short (it asked, or came back). The same locations as the Sender's GET list (decommissioned ones
    with their EVSEs REMOVED). The pusher then sends them in batches of BATCH per task run, in this order, each with
    its state at that time."""
    if partner.status != PartnerStatus.REGISTERED:
        return 0
    queued = 0
    if partner.endpoint_url(Module.LOCATIONS, "RECEIVER") and Module.LOCATIONS in partner.enabled_modules:
        queued += _queue_locations(partner)
    if partner.endpoint_url(Module.TARIFFS, "RECEIVER") and Module.TARIFFS in partner.enabled_modules:
        keys = [
            f"tariff:{pk}"
            for pk in cpo_selectors.tariff_list(partner=partner).order_by("pk").values_list("pk", flat=True)
        ]
        changed(partners=[partner], module=Module.TARIFFS, keys=keys)
        PushState.objects.filter(partner=partner, module=Module.TARIFFS, object_key__in=keys).update(
            next_attempt_at=None
        )
        queued += len(keys)
    if (
        emsp_tokens.serves_tokens(partner)
        and partner.endpoint_url(Module.TOKENS, "RECEIVER")
        and Module.TOKENS in partner.enabled_modules
    ):
        with connection.cursor() as cursor:
            cursor.execute(
                _FULL_SYNC_TOKENS,
                {"partner": partner.pk, "module": Module.TOKENS, "tenant": partner.tenant_id, "now": timezone.now()},
            )
            queued += cursor.rowcount
    if queued:
        transaction.on_commit(functools.partial(_enqueue, partner.pk), robust=True)
    return queued


def _enqueue(partner_id: int) -> None:
    from apps.roaming.tasks import push_partner

    push_partner.apply_async((partner_id,), queue=settings.OCPI_TASK_QUEUE)


@dataclass
class Round:
    sent: int = 0
    failed: bool = False
    retry_at: dt.datetime | None = None
    more: bool = False  # the batch was full: there may be more due now (the task comes back at once)


@dataclass
class Request:
    method: str
    url: str
    body: Any = None
    # what to keep in PushState.remote_url once acknowledged: None = the answer's Location header (a POSTed CDR)
    remember: str | None = None
    # the object is not done after this request (an old copy removed first): come back to it at once
    again: bool = False
    # a 404 answer means done (what we take back is not there: a DELETE, a token invalidated)
    gone_ok: bool = False


def _locations_url(partner: RoamingPartner, *parts: str) -> str:
    base = partner.endpoint_url(Module.LOCATIONS, "RECEIVER") or ""
    return "/".join([base.rstrip("/"), partner.our_country_code, partner.our_party_id, *parts])


def _location_put(partner: RoamingPartner, location_pk: int, state: PushState) -> Request | None:
    """PUT the whole Location (its fields, publish, every EVSE with REMOVED ones as such). A location that is not
    published is sent (with `publish: false`) only to a partner that was sent it before."""
    location = cpo_selectors.location_for_push(partner=partner, pk=location_pk)
    if location is None or (not location.publish and state.pushed_version == 0):
        return None
    evses = cpo_selectors.location_evses([location]).get(location.pk, [])
    tariffs = cpo_selectors.evse_tariff_ids(partner=partner, evses=[(evse, cp) for evse, cp, _ in evses])
    document = objects.location_object(location, partner, evses, tariffs)
    url = _locations_url(partner, document["id"])
    return Request("PUT", url, document, remember=url)


def _evse_put(partner: RoamingPartner, evse_pk: int) -> Request | None:
    """PUT the EVSE with its connectors (a new EVSE, a changed one, a connector added, changed or removed)."""
    evse = Evse.objects.select_related("charge_point__location").filter(pk=evse_pk, tenant_id=partner.tenant_id).first()
    if evse is None or evse.charge_point.location is None or not evse.charge_point.location.publish:
        return None
    connectors = list(Connector.objects.filter(evse=evse).order_by("id"))
    tariffs = cpo_selectors.evse_tariff_ids(partner=partner, evses=[(evse, evse.charge_point)])
    document = objects.evse_object(evse, evse.charge_point, connectors, tariff_ids=tariffs.get(evse.pk))
    url = _locations_url(partner, objects.location_id(evse.charge_point.location), document["uid"])
    return Request("PUT", url, document, remember=url)


def _tariff_request(partner: RoamingPartner, tariff_pk: int, state: PushState) -> Request | None:
    """PUT a tariff the partner sees (chosen for it, else the tenant's public ones); DELETE one it was sent and no
    longer sees (deleted, no longer chosen, no longer on the network: mod_tariffs DELETE); a tariff whose id changed
    is deleted under its old id first."""
    tariff = cpo_selectors.tariff_list(partner=partner).filter(pk=tariff_pk).first()
    if tariff is None:
        if not state.remote_url:
            return None  # never sent: nothing to take back
        return Request("DELETE", state.remote_url, remember="")
    base = partner.endpoint_url(Module.TARIFFS, "RECEIVER") or ""
    url = f"{base.rstrip('/')}/{partner.our_country_code}/{partner.our_party_id}/{tariff.ocpi_id}"
    if state.remote_url and state.remote_url != url:
        return Request("DELETE", state.remote_url, remember="", again=True)
    return Request("PUT", url, objects.tariff_object(tariff_selectors.tariff_document(tariff), partner), remember=url)


def _evse_patch(partner: RoamingPartner, evse_pk: int) -> tuple[str, dict[str, str]] | None:
    evse = Evse.objects.select_related("charge_point__location").filter(pk=evse_pk).first()
    if evse is None or evse.charge_point.location is None:
        return None
    location = evse.charge_point.location
    base = partner.endpoint_url(Module.LOCATIONS, "RECEIVER") or ""
    url = (
        f"{base.rstrip('/')}/{partner.our_country_code}/{partner.our_party_id}/"
        f"{objects.location_id(location)}/{objects.evse_uid(evse)}"
    )
    body = {
        "status": objects.evse_status(evse, evse.charge_point),
        "last_updated": ocpi_datetime(max(m for m in (evse.updated_at, evse.status_received_at) if m)),
    }
    return url, body


def _cdr_post(partner: RoamingPartner, cdr_pk: int) -> tuple[str, dict[str, Any]] | None:
    """POST {cdrs} of our stored CDR (mod_cdrs Receiver: the CDR is sent once, never changed)."""
    cdr = Cdr.objects.filter(pk=cdr_pk, tenant_id=partner.tenant_id).first()
    url = partner.endpoint_url(Module.CDRS, "RECEIVER")
    if cdr is None or not url:
        return None
    return url, objects.cdr_object(cdr)


def _session(partner: RoamingPartner, session_pk: int) -> ChargingSession | None:
    return (
        ChargingSession.objects.select_related("tenant", "token", "location", "evse", "evse_connector", "charge_point")
        .filter(pk=session_pk, tenant_id=partner.tenant_id, roaming_partner=partner.party)
        .first()
    )


def _throttled(state: PushState, session: ChargingSession | None, moment: dt.datetime) -> dt.datetime | None:
    """Meter updates of a running session go out at most every OCPI_SESSION_PUSH_INTERVAL seconds; the start (first
    push) and the end are never held back."""
    if session is None or state.pushed_version == 0 or state.pushed_at is None:
        return None
    if session.status not in RUNNING_STATUSES:
        return None
    interval = dt.timedelta(seconds=settings.OCPI_SESSION_PUSH_INTERVAL)
    due = state.pushed_at + interval
    return due if due > moment else None


def _session_request(
    partner: RoamingPartner, session: ChargingSession | None, *, first: bool
) -> tuple[str, tuple[str, dict[str, Any]] | None]:
    """PUT the whole Session the first time, then PATCH what changes (kwh, status, cost, end)."""
    url = partner.endpoint_url(Module.SESSIONS, "RECEIVER")
    if session is None or not url:
        return "PUT", None
    document = objects.session_object(session, partner)
    target = f"{url.rstrip('/')}/{partner.our_country_code}/{partner.our_party_id}/{document['id']}"
    if first:
        return "PUT", (target, document)
    changes = ("kwh", "status", "total_cost", "end_date_time", "last_updated")
    return "PATCH", (target, {k: document[k] for k in changes if k in document})


# --------------------------------------------------------------------------- eMSP: our tokens to CPO partners


def _token_url(partner: RoamingPartner, token: Token) -> str:
    base = (partner.endpoint_url(Module.TOKENS, "RECEIVER") or "").rstrip("/")
    return f"{base}/{partner.our_country_code}/{partner.our_party_id}/{quote(token.uid, safe='')}?type={token.type}"


def _invalidated(remote_url: str, *, again: bool = False) -> Request:
    """mod_tokens has no DELETE: a token taken back is PATCHed `valid: false` where it was sent."""
    body = {"valid": False, "last_updated": ocpi_datetime(timezone.now())}
    return Request("PATCH", remote_url, body, remember="" if again else remote_url, again=again, gone_ok=True)


def _token_request(partner: RoamingPartner, token_pk: int, state: PushState) -> Request | None:
    """PUT our token (its current state, `emsp_tokens.token_object`) to a CPO we are eMSP for; a deleted token is
    invalidated where it was sent; a token whose uid or type changed is invalidated under the old key, then PUT."""
    if not emsp_tokens.serves_tokens(partner):
        return None
    token = emsp_tokens.token_list(partner=partner).filter(pk=token_pk).first()
    if token is None:
        return _invalidated(state.remote_url) if state.remote_url else None
    url = _token_url(partner, token)
    if state.remote_url and state.remote_url != url:
        return _invalidated(state.remote_url, again=True)
    document = emsp_token_objects.token_object(token, partner, issuer=partner.tenant.name)
    return Request("PUT", url, document, remember=url)


def _header(headers: dict[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), "")


def _request(partner: RoamingPartner, state: PushState, moment: dt.datetime, result: Round) -> Request | bool | None:
    """The request that brings the partner up to date with this object; None: nothing to send (gone, not shown);
    False: not now (a throttled meter update, `next_attempt_at` set)."""
    kind, _, pk = state.object_key.partition(":")
    if not pk.isdigit():
        return None
    if kind == "evse":
        patch = _evse_patch(partner, int(pk))
        return None if patch is None else Request("PATCH", *patch)
    if kind == "evse-put":
        return _evse_put(partner, int(pk))
    if kind == "location":
        return _location_put(partner, int(pk), state)
    if kind == "tariff":
        return _tariff_request(partner, int(pk), state)
    if kind == "cdr":
        post = _cdr_post(partner, int(pk))
        return None if post is None else Request("POST", *post)
    if kind == "token":
        return _token_request(partner, int(pk), state)
    if kind == "session":
        session = _session(partner, int(pk))
        wait_until = _throttled(state, session, moment)
        if wait_until is not None:  # a meter update soon after the last push: later, with the newest value
            PushState.objects.filter(pk=state.pk).update(next_attempt_at=wait_until)
            result.retry_at = min(result.retry_at or wait_until, wait_until)
            return False
        method, request = _session_request(partner, session, first=state.pushed_version == 0)
        return None if request is None else Request(method, *request)
    return None


def push_partner(*, partner_id: int, now: dt.datetime | None = None, limit: int = BATCH) -> Round:
    """Send this partner's due pending pushes, oldest change first; stop at the first failure, or after `limit`
    objects (`more`: the caller comes back at once)."""
    result = Round()
    partner = RoamingPartner.objects.filter(pk=partner_id, status=PartnerStatus.REGISTERED).first()
    if partner is None:
        return result
    moment = now or timezone.now()
    while True:
        if result.sent >= limit:
            result.more = True
            return result
        with transaction.atomic():
            state = (
                PushState.objects.select_for_update(skip_locked=True)
                .filter(partner_id=partner_id, version__gt=F("pushed_version"))
                .exclude(next_attempt_at__gt=moment)
                .order_by("id")
                .first()
            )
            if state is None:
                return result
            version = state.version
            request = _request(partner, state, moment, result)
            if request is False:
                continue
            if not isinstance(request, Request):  # the object is gone or not shown: nothing left to tell
                PushState.objects.filter(pk=state.pk).update(pushed_version=version)
                continue
            try:
                answer = client.call(
                    request.method,
                    request.url,
                    token=partner.their_token,
                    token_style=partner.token_style,
                    body=request.body,
                    routing=partner,
                )
                location_header = _header(answer.headers, "Location")
            except client.PartnerCallError as error:
                if not ((request.method == "DELETE" or request.gone_ok) and error.http_status == 404):  # gone: done
                    attempts = state.attempts + 1
                    retry_at = moment + dt.timedelta(seconds=min(RETRY_BASE_S * 2 ** (attempts - 1), RETRY_MAX_S))
                    PushState.objects.filter(pk=state.pk).update(
                        attempts=attempts, next_attempt_at=retry_at, last_error=error.message[:500]
                    )
                    services.partner_error_record(partner_id=partner_id, module=state.module, message=error.message)
                    result.failed, result.retry_at = True, retry_at
                    return result
                location_header = ""
            remote_url = (location_header if request.remember is None else request.remember)[:255]
            if request.again:
                PushState.objects.filter(pk=state.pk).update(remote_url=remote_url)
                continue
            PushState.objects.filter(pk=state.pk).update(
                pushed_version=version,
                attempts=0,
                next_attempt_at=None,
                last_error="",
                pushed_at=timezone.now(),
                remote_url=remote_url,
            )
            services.partner_push_record(partner_id=partner_id, module=state.module, object_key=state.object_key)
            result.sent += 1


def due_partner_ids(*, now: dt.datetime | None = None) -> list[int]:
    """Partners with pending pushes that are due (beat's sweep)."""
    moment = now or timezone.now()
    return list(
        PushState.objects.filter(version__gt=F("pushed_version"))
        .exclude(next_attempt_at__gt=moment)
        .values_list("partner_id", flat=True)
        .distinct()
    )
