"""Event subscribers of the Hubject connection (called by `apps.roaming.subscribers`): our network's changes go to
Hubject as PushEvseStatus (each status change, at once) and PushEvseData (a delta sync). Idempotent: a repeated
event sends the current state again."""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from apps.core import events
from apps.roaming.models import OicpOperation
from apps.roaming.oicp import cpo_pricing, cpo_push, emp_auth, inbound, tasks
from apps.roaming.oicp.services import HUBJECT
from apps.sessions.models import RUNNING_STATUSES, ChargingSession
from apps.stations.models import Evse

TOKENS_PER_TASK = 5000
ERROR_EVERY_S = 300  # one Error notification per session and error code in this time (a charger may repeat it)


def _after_commit(task: Any, *args: object) -> None:
    """Sent after the delivery's commit, to the roaming queue (OCPI_TASK_QUEUE, as the OCPI pushes)."""
    send = functools.partial(task.apply_async, args, queue=settings.OCPI_TASK_QUEUE)
    transaction.on_commit(send, robust=True)


def connector_status_changed(event: events.ConnectorStatusChanged) -> None:
    """A StatusNotification (connector 0: every EVSE of the charger): PushEvseStatus of the EVSEs concerned; a fault
    during a session Hubject started is an Error notification to its EMP (once per session and error code)."""
    if event.status == "Faulted" or event.error_code not in ("", "NoError"):
        _errors(event)
    connections = cpo_push.connections_pushing(tenant_id=event.tenant_id, operation=OicpOperation.PUSH_EVSE_STATUS)
    if not connections:
        return
    evses = Evse.objects.filter(charge_point_id=event.charge_point_id)
    if event.connector_id:
        evses = evses.filter(connector_id=event.connector_id)
    pks = list(evses.order_by("pk").values_list("pk", flat=True))
    for connection_id in connections:
        if pks:
            _after_commit(tasks.oicp_evse_status, connection_id, pks)


def _errors(event: events.ConnectorStatusChanged) -> None:
    running = ChargingSession.objects.filter(
        tenant_id=event.tenant_id,
        charge_point_id=event.charge_point_id,
        roaming_partner=HUBJECT,
        status__in=RUNNING_STATUSES,
    )
    if event.connector_id:
        running = running.filter(connector_id=event.connector_id)
    info = f"The charging station reports {event.status} ({event.error_code or 'no error code'})."
    for session_id in running.values_list("pk", flat=True):
        if cache.add(f"oicp-error:{session_id}:{event.error_code}", 1, timeout=ERROR_EVERY_S):
            _after_commit(tasks.oicp_notification, session_id, "Error", event.error_code, info)


def network_changed(event: events.LocationChanged | events.EvseChanged) -> None:
    """A location or EVSE was added, described anew or decommissioned: a delta sync of our EVSE data."""
    for connection_id in cpo_push.connections_pushing(
        tenant_id=event.tenant_id, operation=OicpOperation.PUSH_EVSE_DATA
    ):
        _after_commit(tasks.oicp_evse_data_sync, connection_id)


def tariff_changed(event: events.TariffChanged) -> None:
    """A tariff or where it applies changed: our pricing products and EVSE pricing at Hubject (sent only when what
    Hubject should hold differs from what it acknowledged)."""
    for connection_id in cpo_pricing.connections_pricing(tenant_id=event.tenant_id):
        _after_commit(tasks.oicp_pricing, connection_id)


def tokens_changed(event: events.TokensChanged) -> None:
    """Our tenant's tokens changed: PushAuthenticationData of their changes (read when the task runs)."""
    for connection_id in emp_auth.connections_pushing(tenant_id=event.tenant_id):
        for start in range(0, len(event.token_ids), TOKENS_PER_TASK):
            chunk = event.token_ids[start : start + TOKENS_PER_TASK]
            _after_commit(tasks.oicp_authentication_data, connection_id, chunk)


def session_started(event: events.SessionStarted, party: str) -> None:
    """A session Hubject started or authorized began (`party`: the session's roaming party): the Start
    notification to its EMP."""
    if party == HUBJECT:
        _after_commit(tasks.oicp_notification, event.session_id, "Start")


def session_meter_updated(event: events.SessionMeterUpdated, party: str) -> None:
    """Its energy grew: a Progress notification, at most one every 5 minutes per session (Hubject's rule)."""
    if party == HUBJECT and cache.add(f"oicp-progress:{event.session_id}", 1, timeout=inbound.PROGRESS_EVERY_S):
        _after_commit(tasks.oicp_notification, event.session_id, "Progress")


def session_ended(event: events.SessionEnded, party: str) -> None:
    """A session Hubject started ended: the End notification, and its ChargeDetailRecord goes to Hubject."""
    if party == HUBJECT:
        _after_commit(tasks.oicp_notification, event.session_id, "End")
        _after_commit(tasks.oicp_cdr, event.session_id)
