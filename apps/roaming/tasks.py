"""Celery tasks of roaming: the OCPI pushes (apps/roaming/ocpi/push.py) and the partners' commands. They take ids,
are idempotent, and own their retry policy."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.roaming import commands
from apps.roaming.models import EmspCommand, RoamingCommand
from apps.roaming.ocpi.client import PartnerCallError
from apps.roaming.oicp import tasks as oicp_tasks  # noqa: F401 (registers the Hubject tasks with the worker)

logger = logging.getLogger(__name__)

RESULT_RETRIES = 8  # 5 s, doubling, at most 10 min apart: about 20 minutes in all
RESULT_RETRY_BASE_S = 5


@shared_task(name="roaming.push_partner", ignore_result=True)
def push_partner(partner_id: int) -> int:
    """Send a partner's pending pushes; after a failure come back when the backoff is over. Returns how many went."""
    from apps.roaming.ocpi import push

    result = push.push_partner(partner_id=partner_id)
    queue = settings.OCPI_TASK_QUEUE
    if result.more:  # a full batch went: the rest in the next run, behind other partners' tasks
        push_partner.apply_async((partner_id,), queue=queue)
    elif result.retry_at is not None:
        countdown = max((result.retry_at - timezone.now()).total_seconds(), 0)
        push_partner.apply_async((partner_id,), countdown=countdown, queue=queue)
    return result.sent


@shared_task(name="roaming.push_sweep", ignore_result=True)
def push_sweep() -> int:
    """Beat: a push task for every partner with due pending pushes (a lost task, a retry whose wake-up was lost)."""
    from apps.roaming.ocpi import push

    partner_ids = push.due_partner_ids()
    for partner_id in partner_ids:
        push_partner.apply_async((partner_id,), queue=settings.OCPI_TASK_QUEUE)
    return len(partner_ids)


@shared_task(name="roaming.command_run", bind=True, max_retries=RESULT_RETRIES, acks_late=True)
def command_run(self: Any, roaming_command_id: int) -> str:
    """Run a partner's command (or charging profile request) against the charger once, then POST its result to the
    partner's response_url, retrying with backoff while they cannot take it."""
    if not RoamingCommand.objects.filter(pk=roaming_command_id).exists():
        # a task outliving its row (a queue kept across a database reset, as the demo's persistent Redis does)
        logger.warning("roaming command %s: no such command, task dropped", roaming_command_id)
        return "gone"
    commands.command_execute(roaming_command_id=roaming_command_id)
    try:
        row = commands.command_deliver(roaming_command_id=roaming_command_id)
    except PartnerCallError as error:
        if self.request.retries >= RESULT_RETRIES:
            logger.warning("OCPI result %s never delivered: %s", roaming_command_id, error.message)
            commands.command_give_up(roaming_command_id=roaming_command_id)
            return "undelivered"
        raise self.retry(countdown=min(RESULT_RETRY_BASE_S * 2**self.request.retries, 600)) from None
    return str(row.state)


# --------------------------------------------------------------------------- eMSP commands Sender


@shared_task(name="roaming.emsp_command_expire", ignore_result=True)
def emsp_command_expire(command_id: int) -> str:
    """A command we sent a CPO: TIMEOUT if its result has not come by its deadline (a countdown from its answer)."""
    from apps.roaming.ocpi import emsp_commands

    if not EmspCommand.objects.filter(pk=command_id).exists():  # outlived its row (a queue kept across a reset)
        logger.warning("eMSP command %s: no such command, expiry dropped", command_id)
        return "gone"
    row = emsp_commands.finish(
        command_id=command_id,
        result=emsp_commands.TIMEOUT,
        message="No result from the operator within its timeout.",
        expired=True,
    )
    return row.result


@shared_task(name="roaming.emsp_commands_expire", ignore_result=True)
def emsp_commands_expire() -> int:
    """Beat: TIMEOUT for every command whose deadline passed (a countdown task lost with its worker)."""
    from apps.roaming.ocpi import emsp_commands

    return emsp_commands.commands_expire()


@shared_task(name="roaming.pull_partner", ignore_result=True)
def pull_partner(partner_id: int, full: bool = False, modules: list[str] | None = None) -> int:
    """Pull a CPO partner's Sender interfaces (apps/roaming/ocpi/pull.py); returns the objects received. A failed
    module is retried by the next sweep (its date_from stays)."""
    from apps.roaming.ocpi import pull

    return sum(r.received for r in pull.pull_partner(partner_id=partner_id, modules=modules, full=full))


@shared_task(name="roaming.pull_sweep", ignore_result=True)
def pull_sweep() -> int:
    """Beat: a pull task for every partner module that is due (not pulled for OCPI_PULL_INTERVAL_S, nothing pushed)."""
    from apps.roaming.ocpi import pull

    by_partner: dict[int, list[str]] = {}
    for partner_id, module in pull.due():
        by_partner.setdefault(partner_id, []).append(module)
    for partner_id, modules in by_partner.items():
        pull_partner.apply_async((partner_id,), {"modules": modules}, queue=settings.OCPI_TASK_QUEUE)
    return len(by_partner)
