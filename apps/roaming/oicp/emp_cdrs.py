"""GetChargeDetailRecords (OICP 2.3, the EMP file): Hubject's copy of the CDRs of our drivers, for reconciliation.

Hubject forwards each CPO's ChargeDetailRecord to us as it comes (`emp.charge_detail_record`); a forward can be lost
(we were down past Hubject's retries, a network split). `cdr_reconcile` asks Hubject for every CDR of our ProviderID
received in a time window (paged) and compares, CDR by CDR, by SessionID:

- **recovered**: we never received it and the session is ours: it is stored now through the same path as a forwarded
  one, so it is billed as if it had come in time;
- **matched**: ours has the same energy and times;
- **mismatched**: ours says something else: flagged `mismatch` for finance's reconciliation list, both figures in
  `review_detail` (the bill stays as it was: finance decides);
- **unknown**: a CDR for a session we did not start (not ours to bill);
- **refused**: our checks refuse it (e.g. SessionEnd before SessionStart), with the reason.

It runs for the last two days on the daily sweep (`roaming.oicp_daily_sweep`) and for any window from the admin."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone

from apps.roaming.models import OicpConnection, OicpOperation
from apps.roaming.oicp import emp
from apps.roaming.oicp.client import OicpClient
from apps.sessions.models import PartnerCdr
from apps.sessions.reconciliation import partner_cdr_flag

SWEEP_WINDOW = dt.timedelta(days=2)


@dataclass
class CdrReconciliation:
    listed: int = 0
    matched: int = 0
    recovered: int = 0
    mismatched: int = 0
    unknown: int = 0
    refused: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "listed": self.listed,
            "matched": self.matched,
            "recovered": self.recovered,
            "mismatched": self.mismatched,
            "unknown": self.unknown,
            "refused": self.refused,
            "problems": self.problems[:20],
        }


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def connections_reconciling() -> list[int]:
    return list(
        OicpConnection.objects.filter(
            enabled=True, enabled_operations__contains=[OicpOperation.GET_CHARGE_DETAIL_RECORDS]
        )
        .exclude(provider_id="")
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _differences(ours: PartnerCdr, theirs: dict[str, Any]) -> list[str]:
    found = []
    energy = Decimal(str(theirs["ConsumedEnergy"])).quantize(Decimal("0.0001"))
    if ours.total_energy != energy:
        found.append(f"energy {ours.total_energy} kWh here, {energy} kWh at Hubject")
    for ours_at, key in ((ours.start_date_time, "SessionStart"), (ours.end_date_time, "SessionEnd")):
        at = emp.parse_stamp(theirs[key])
        if abs((ours_at - at).total_seconds()) >= 1:
            found.append(f"{key} {_stamp(ours_at)} here, {_stamp(at)} at Hubject")
    return found


def cdr_reconcile(*, connection_id: int, start: dt.datetime, end: dt.datetime) -> CdrReconciliation:
    """Compare Hubject's CDRs of our ProviderID received between `start` and `end` with ours (see the module's
    docstring). Raises the client's errors (the task retries); what was stored before a failed page stays."""
    connection = OicpConnection.objects.select_related("partner", "tenant").get(pk=connection_id)
    emp.usable(connection, OicpOperation.GET_CHARGE_DETAIL_RECORDS)
    body = {"ProviderID": connection.provider_id, "From": _stamp(start), "To": _stamp(end)}
    result = CdrReconciliation()
    client = OicpClient(connection)
    try:
        for answer in emp.pages(client, OicpOperation.GET_CHARGE_DETAIL_RECORDS, body):
            for cdr in answer.get("content") or []:
                if isinstance(cdr, dict) and cdr.get("SessionID"):
                    _one(connection, cdr, result)
    finally:
        client.close()
    return result


def _one(connection: OicpConnection, cdr: dict[str, Any], result: CdrReconciliation) -> None:
    result.listed += 1
    session_id = str(cdr["SessionID"])
    ours = PartnerCdr.objects.filter(partner_id=connection.partner_id, ocpi_id=session_id, credit=False).first()
    if ours is None:
        code, info, _stored = emp.charge_detail_record(cdr)
        if code == "000":
            result.recovered += 1
        elif code == "400":
            result.unknown += 1
        else:
            result.refused += 1
            result.problems.append(f"{session_id}: {info}")
        return
    differences = _differences(ours, cdr)
    if not differences:
        result.matched += 1
        return
    result.mismatched += 1
    partner_cdr_flag(cdr_id=ours.pk, detail=f"Hubject's copy of this CDR differs: {'; '.join(differences)}.")


def sweep_window(now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    end = now or timezone.now()
    return end - SWEEP_WINDOW, end
