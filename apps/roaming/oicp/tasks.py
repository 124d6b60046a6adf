"""Celery tasks of the Hubject connection (imported by `apps.roaming.tasks`, so the worker registers them; routed to
the roaming queue like every `roaming.*` task). They take ids, are idempotent, and own their retry policy."""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import shared_task

from apps.core.errors import Conflict
from apps.roaming.oicp import cpo_pricing, cpo_push, emp, emp_auth, emp_cdrs, inbound
from apps.roaming.oicp.client import OicpCallFailed

RETRIES = 8  # 5 s, doubling, at most 10 minutes apart
RETRY_BASE_S = 5


def _countdown(retries: int) -> int:
    return int(min(600, RETRY_BASE_S * 2**retries))


@shared_task(name="roaming.oicp_evse_data_sync", bind=True, max_retries=RETRIES, ignore_result=True)
def oicp_evse_data_sync(self: Any, connection_id: int, full: bool = False) -> dict[str, Any]:
    """PushEvseData: fullLoad the first time (or when asked), then the inserts, updates and deletes since."""
    try:
        result = cpo_push.evse_data_sync(connection_id=connection_id, full=full)
    except OicpCallFailed as error:
        raise self.retry(exc=error, countdown=_countdown(self.request.retries)) from error
    if result.sent:  # Hubject prices only the EVSEs it holds: their pricing follows their data
        oicp_pricing.delay(connection_id)
    return {"action": result.action, "sent": result.sent, "skipped": result.skipped, "refused": result.refused}


@shared_task(name="roaming.oicp_evse_status", bind=True, max_retries=3, ignore_result=True)
def oicp_evse_status(self: Any, connection_id: int, evse_pks: list[int]) -> int:
    """PushEvseStatus of these EVSEs' current status (sent when read: a retry sends the newest state)."""
    try:
        return cpo_push.evse_status_push(connection_id=connection_id, evse_pks=evse_pks)
    except OicpCallFailed as error:
        raise self.retry(exc=error, countdown=_countdown(self.request.retries)) from error


@shared_task(name="roaming.oicp_cdr", bind=True, max_retries=RETRIES, ignore_result=True)
def oicp_cdr(self: Any, session_id: int) -> bool:
    """ChargeDetailRecord of a session Hubject started, sent once (retried while Hubject cannot be reached)."""
    try:
        return inbound.cdr_send(session_id=session_id)
    except OicpCallFailed as error:
        raise self.retry(exc=error, countdown=_countdown(self.request.retries)) from error


@shared_task(name="roaming.oicp_evse_pull", bind=True, max_retries=3, ignore_result=True)
def oicp_evse_pull(self: Any, connection_id: int, full: bool = False) -> dict[str, Any]:
    """PullEvseData (all of it the first time or when asked, else what changed since the last pull) into the
    partner catalog, with the statuses."""
    try:
        result = emp.evse_data_pull(connection_id=connection_id, full=full)
    except OicpCallFailed as error:
        raise self.retry(exc=error, countdown=_countdown(self.request.retries)) from error
    return {"records": result.records, "locations": result.locations, "removed": result.removed}


@shared_task(name="roaming.oicp_pull_sweep", ignore_result=True)
def oicp_pull_sweep() -> int:
    """Beat: a delta pull of every Hubject connection we are EMP on (a first pull is a full one)."""
    ids = emp.connections_pulling()
    for connection_id in ids:
        oicp_evse_pull.delay(connection_id)
    return len(ids)


@shared_task(name="roaming.oicp_notification", ignore_result=True)
def oicp_notification(session_id: int, kind: str, error_code: str = "", info: str = "") -> bool:
    """ChargingNotification (Start, Progress, End, Error) of a session Hubject started; not retried: the next one,
    the End and the CDR carry the newer state."""
    try:
        return inbound.notification_send(session_id=session_id, kind=kind, error_code=error_code, info=info)
    except OicpCallFailed:
        return False


@shared_task(name="roaming.oicp_authentication_data", bind=True, max_retries=RETRIES, ignore_result=True)
def oicp_authentication_data(
    self: Any, connection_id: int, token_ids: list[int] | None = None, full: bool = False
) -> dict[str, Any]:
    """PushAuthenticationData: fullLoad the first time (or when asked), then the changes of these tokens (all of
    them without ids), read when the task runs (a retry sends the newest state)."""
    try:
        result = emp_auth.authentication_data_sync(connection_id=connection_id, token_ids=token_ids, full=full)
    except OicpCallFailed as error:
        raise self.retry(exc=error, countdown=_countdown(self.request.retries)) from error
    return {"action": result.action, "sent": result.sent, "refused": result.refused}


@shared_task(name="roaming.oicp_cdr_reconcile", bind=True, max_retries=3, ignore_result=True)
def oicp_cdr_reconcile(self: Any, connection_id: int, start: str, end: str) -> dict[str, Any]:
    """GetChargeDetailRecords of [start, end] (ISO date-times) compared with the CDRs we hold."""
    try:
        result = emp_cdrs.cdr_reconcile(
            connection_id=connection_id, start=dt.datetime.fromisoformat(start), end=dt.datetime.fromisoformat(end)
        )
    except OicpCallFailed as error:
        raise self.retry(exc=error, countdown=_countdown(self.request.retries)) from error
    return result.as_dict()


@shared_task(name="roaming.oicp_daily_sweep", ignore_result=True)
def oicp_daily_sweep() -> int:
    """Beat, daily: every token compared with what Hubject holds (a contract that ran out publishes no event), and
    the last two days of Hubject's CDRs reconciled with ours."""
    queued = 0
    for connection_id in emp_auth.connections_pushing():
        oicp_authentication_data.delay(connection_id)
        queued += 1
    start, end = emp_cdrs.sweep_window()
    for connection_id in emp_cdrs.connections_reconciling():
        oicp_cdr_reconcile.delay(connection_id, start.isoformat(), end.isoformat())
        queued += 1
    return queued


@shared_task(name="roaming.oicp_pricing", bind=True, max_retries=RETRIES, ignore_result=True)
def oicp_pricing(self: Any, connection_id: int, full: bool = False) -> dict[str, Any]:
    """PushPricingProductData and PushEVSEPricing (fullLoads) when our prices or EVSEs at Hubject changed."""
    try:
        result = cpo_pricing.pricing_sync(connection_id=connection_id, full=full)
    except OicpCallFailed as error:
        raise self.retry(exc=error, countdown=_countdown(self.request.retries)) from error
    return {"products": result.products, "evses": result.evses, "sent": result.sent, "skipped": result.skipped}


@shared_task(name="roaming.oicp_evse_status_by_id", ignore_result=True)
def oicp_evse_status_by_id(connection_id: int, evse_ids: list[str]) -> int:
    """PullEvseStatusById of a few catalog EVSEs; not retried (the next status sweep brings it too)."""
    try:
        return emp.evse_status_by_id(connection_id=connection_id, evse_ids=evse_ids)
    except (OicpCallFailed, Conflict):  # Hubject unreachable, or the connection no longer pulls statuses
        return 0
