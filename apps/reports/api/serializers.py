from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.api.serializers import StrictSerializer
from apps.reports.models import ExportJob
from apps.sessions.models import SessionStatus
from apps.tenants.scoping import TenantOwnedSerializer

_IDS_HELP = "Only sessions of these {} (ids of the same tenant); empty means all."


class ExportJobSerializer(TenantOwnedSerializer):
    """An export of charging sessions: the filters and format asked for, and how far it got."""

    location_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, help_text=_IDS_HELP.format("locations")
    )
    charge_point_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, help_text=_IDS_HELP.format("charge points")
    )
    business_customer_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        help_text=_IDS_HELP.format("business customers (their tokens and their drivers' tokens)"),
    )
    driver_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, help_text=_IDS_HELP.format("drivers' tokens")
    )
    statuses = serializers.ListField(
        child=serializers.ChoiceField(choices=SessionStatus.choices), required=False, help_text="Session statuses."
    )
    roaming_partners = serializers.ListField(
        child=serializers.CharField(max_length=20),
        required=False,
        help_text='Only sessions with these roaming partners ("DE*ABC"); "-" for the own network\'s sessions.',
    )
    progress_percent = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "tenant",
            "format",
            "csv_separator",
            "date_from",
            "date_to",
            "location_ids",
            "charge_point_ids",
            "business_customer_ids",
            "driver_ids",
            "statuses",
            "roaming_partners",
            "personal_data",
            "status",
            "rows_done",
            "rows_total",
            "progress_percent",
            "row_count",
            "sheet_count",
            "file_size",
            "duration",
            "error",
            "requested_by",
            "requested_via",
            "created_at",
            "started_at",
            "finished_at",
            "expires_at",
        ]
        read_only_fields = [
            "personal_data",
            "status",
            "rows_done",
            "rows_total",
            "row_count",
            "sheet_count",
            "file_size",
            "duration",
            "error",
            "requested_by",
            "requested_via",
            "created_at",
            "started_at",
            "finished_at",
            "expires_at",
        ]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        date_from, date_to = attrs.get("date_from"), attrs.get("date_to")
        if date_from is not None and date_to is not None and date_to <= date_from:
            raise serializers.ValidationError({"date_to": ["Must be after date_from."]})
        return attrs


class ExportCancelSerializer(StrictSerializer):
    """No input: an empty object."""


class DownloadLinkSerializer(serializers.Serializer[Any]):
    url = serializers.URLField(help_text="Signed link to the file; works without other credentials until expires_at.")
    expires_at = serializers.DateTimeField()
    file_name = serializers.CharField()
    file_size = serializers.IntegerField()
