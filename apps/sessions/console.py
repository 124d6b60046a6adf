"""Reads for the session page of the ops console: what happened in a session, in order (status changes, commands
sent to its charger about it, limits, meter values), and its meter series for the chart. Frames of the wire are
the `ocpp` app's (its admin serves them to the page)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy

from apps.core import admin_display as human
from apps.sessions import selectors
from apps.sessions.models import ChargingSession
from apps.stations.models import Command
from apps.tariffs import texts as tariff_texts

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
SOC = "SoC"
MAX_POINTS = 1500  # a chart of a day-long session at 15 s samples is thinned to this
MAX_METER_ROWS = 24  # meter readings in the timeline (the chart has them all)


KIND_LABELS = {
    "start": pgettext_lazy("session timeline", "start"),
    "status": pgettext_lazy("session timeline", "status"),
    "command": pgettext_lazy("session timeline", "command"),
    "limit": pgettext_lazy("session timeline", "limit"),
    "meter": pgettext_lazy("session timeline", "meter"),
    "stop": pgettext_lazy("session timeline", "stop"),
}
LIMIT_NAMES = {"duration": gettext_lazy("Duration limit reached"), "energy": gettext_lazy("Energy limit reached")}


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the timeline, its texts in the active language."""

    at: dt.datetime
    kind: str  # status, command, limit, meter, start, stop
    title: str
    detail: str = ""

    @property
    def kind_label(self) -> str:
        return str(KIND_LABELS.get(self.kind, self.kind))


def _window(session: ChargingSession) -> tuple[dt.datetime, dt.datetime]:
    end = session.stopped_at or timezone.now()
    return session.started_at - dt.timedelta(minutes=1), end + dt.timedelta(minutes=1)


def _kw(value: Decimal, unit: str) -> float:
    return float(value) if unit == "kW" else float(value) / 1000


def _kwh(value: Decimal, unit: str) -> float:
    return float(value) if unit == "kWh" else float(value) / 1000


def meter_series(session: ChargingSession) -> dict[str, list[Any]]:
    """Power (kW), energy charged so far (kWh) and state of charge (%) at each sample time (UTC ISO strings)."""
    rows = (
        selectors.session_meter_values(session)
        .filter(phase="", measurand__in=[ENERGY, POWER, SOC])
        .order_by("timestamp", "pk")
        .values_list("timestamp", "measurand", "value", "unit")
    )
    points: dict[dt.datetime, dict[str, float]] = {}
    for at, measurand, value, unit in rows:
        point = points.setdefault(at, {})
        if measurand == ENERGY:
            point["energy"] = round(max(_kwh(value, unit) - session.meter_start_wh / 1000, 0.0), 3)
        elif measurand == POWER:
            point["power"] = round(_kw(value, unit), 2)
        else:
            point["soc"] = round(float(value), 1)
    stamps = sorted(points)
    step = max(1, -(-len(stamps) // MAX_POINTS))
    kept = stamps[::step]
    if stamps and kept[-1] != stamps[-1]:
        kept.append(stamps[-1])
    return {
        "at": [at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") for at in kept],
        "power_kw": [points[at].get("power") for at in kept],
        "energy_kwh": [points[at].get("energy") for at in kept],
        "soc": [points[at].get("soc") for at in kept],
    }


def _commands(session: ChargingSession) -> list[Command]:
    start, end = _window(session)
    about = (
        Q(payload__transactionId=session.pk)
        | Q(payload__csChargingProfiles__transactionId=session.pk)
        | Q(payload__connectorId=session.connector_id)
    )
    return list(
        Command.objects.filter(charge_point_id=session.charge_point_id, created_at__gte=start, created_at__lte=end)
        .filter(about)
        .order_by("created_at", "pk")[:200]
    )


def _command_detail(command: Command) -> str:
    payload = command.payload or {}
    schedule = (payload.get("csChargingProfiles") or {}).get("chargingSchedule") or {}
    periods = schedule.get("chargingSchedulePeriod") or []
    if periods:
        purpose = payload["csChargingProfiles"].get("chargingProfilePurpose", "")
        return f"{purpose} {periods[0].get('limit')} {schedule.get('chargingRateUnit', '')}, {command.source}"
    return command.source


def timeline(session: ChargingSession) -> list[TimelineEntry]:
    """Everything that happened in the session, oldest first."""
    entries = [
        TimelineEntry(
            session.started_at,
            "start",
            gettext("Started on connector %(connector)s") % {"connector": session.connector_id},
            gettext("card %(tag)s: %(status)s")
            % {"tag": session.id_tag, "status": session.auth_status or gettext("not decided")}
            + (f" ({session.auth_reason})" if session.auth_reason else ""),
        )
    ]
    for event in session.events.order_by("at", "pk"):
        change = f"{event.from_status or gettext('new')} → {event.to_status}"
        entries.append(
            TimelineEntry(event.at, "status", gettext("Status %(change)s") % {"change": change}, event.reason)
        )
    for command in _commands(session):
        entries.append(
            TimelineEntry(
                command.created_at,
                "command",
                f"{command.action}: {command.get_status_display().lower()}",
                _command_detail(command) + (f" — {command.error}" if command.error else ""),
            )
        )
    if session.limit_reached_at is not None:
        outcome = session.get_limit_outcome_display() if session.limit_outcome else gettext("pending")
        name = LIMIT_NAMES.get(session.limit_reached)
        title = str(name) if name else f"{session.limit_reached.capitalize()} limit reached"
        entries.append(TimelineEntry(session.limit_reached_at, "limit", title, str(outcome)))
    series = meter_series(session)
    count = len(series["at"])
    step = max(1, -(-count // MAX_METER_ROWS))
    for i in [*range(0, count, step), *([count - 1] if count and (count - 1) % step else [])]:
        parts = []
        if series["energy_kwh"][i] is not None:
            parts.append(human.number(Decimal(str(series["energy_kwh"][i])), min_places=2, max_places=2) + " kWh")
        if series["power_kw"][i] is not None:
            parts.append(human.number(Decimal(str(series["power_kw"][i])), min_places=1, max_places=1) + " kW")
        if series["soc"][i] is not None:
            parts.append(f"SoC {series['soc'][i]:.0f} %")
        at = dt.datetime.fromisoformat(series["at"][i].replace("Z", "+00:00"))
        entries.append(TimelineEntry(at, "meter", gettext("Meter values"), ", ".join(parts)))
    if session.stopped_at is not None:
        entries.append(
            TimelineEntry(
                session.stopped_at,
                "stop",
                gettext("Stopped"),
                (session.stop_reason or gettext("reason not given"))
                + (", " + gettext("card %(tag)s") % {"tag": session.stop_id_tag} if session.stop_id_tag else ""),
            )
        )
    order = {"start": 0, "status": 1, "command": 2, "limit": 3, "meter": 4, "stop": 5}
    return sorted(entries, key=lambda e: (e.at, order[e.kind]))


def cost_lines(session: ChargingSession) -> list[dict[str, Any]]:
    """The stored breakdown's lines (the tariff elements applied), as the price engine wrote them, each with its
    dimension and text in the active language (`dimension_text`, `description_text`)."""
    breakdown = session.cost_breakdown or {}
    return [
        {
            **line,
            "dimension_text": tariff_texts.dimension_label(line["dimension"]) if line.get("dimension") else "",
            "description_text": tariff_texts.component_text(line["description"]) if line.get("description") else "",
        }
        for line in breakdown.get("lines") or []
        if isinstance(line, dict)
    ]
