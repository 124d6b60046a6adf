"""Reads of the stations domain, with their joins applied."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.stations.models import ChargePoint, Command, Connector, Evse, Location


def location_list() -> QuerySet[Location]:
    return Location.objects.select_related("tenant").order_by("name")


def charge_point_list() -> QuerySet[ChargePoint]:
    return ChargePoint.objects.select_related("tenant", "location").order_by("identity")


def evse_list() -> QuerySet[Evse]:
    return Evse.objects.select_related("tenant", "charge_point").order_by("charge_point_id", "connector_id")


def connector_list() -> QuerySet[Connector]:
    return Connector.objects.select_related("evse", "evse__tenant")


def command_list() -> QuerySet[Command]:
    return Command.objects.select_related("tenant", "charge_point", "requested_by")
