"""Celery tasks of the Hubject connection (imported by `apps.roaming.tasks`, so the worker registers them; routed to
the roaming queue like every `roaming.*` task). They take ids, are idempotent, and own their retry policy."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from apps.roaming.oicp import cpo_push, inbound
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
