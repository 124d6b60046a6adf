from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.analytics.models import (
    Alert,
    AlertRule,
    DeliveryAttempt,
    Granularity,
    WebhookDelivery,
    WebhookSubscription,
)
from apps.analytics.notifications import EVENT_TYPES
from apps.core.api.serializers import StrictModelSerializer, StrictSerializer
from apps.tenants.scoping import TenantOwnedSerializer


class AlertRuleSerializer(TenantOwnedSerializer):
    class Meta:
        model = AlertRule
        fields = [
            "id",
            "tenant",
            "kind",
            "enabled",
            "threshold_minutes",
            "power_margin_percent",
            "notify_emails",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        tenant = attrs.get("tenant") or (self.instance.tenant if self.instance else None)
        kind = attrs.get("kind") or (self.instance.kind if self.instance else None)
        clash = AlertRule.objects.filter(tenant=tenant, kind=kind)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if tenant is not None and clash.exists():
            raise serializers.ValidationError({"kind": ["This tenant already has a rule of this kind."]})
        return attrs


class AlertSerializer(StrictModelSerializer):
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", read_only=True, default=None)

    class Meta:
        model = Alert
        fields = [
            "id",
            "tenant",
            "rule",
            "kind",
            "subject",
            "status",
            "charge_point_id",
            "message",
            "details",
            "occurrences",
            "opened_at",
            "last_seen_at",
            "resolved_at",
            "acknowledged_at",
            "acknowledged_by",
            "ack_comment",
        ]
        read_only_fields = fields


class AcknowledgeSerializer(StrictSerializer):
    comment = serializers.CharField(max_length=2000, allow_blank=True, default="")


class EmptySerializer(StrictSerializer):
    pass


class WebhookSubscriptionSerializer(TenantOwnedSerializer):
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), required=False, help_text="Empty = every event type."
    )

    class Meta:
        model = WebhookSubscription
        fields = ["id", "tenant", "name", "url", "secret", "event_types", "is_active", "created_at", "updated_at"]
        read_only_fields = ["id", "secret", "created_at", "updated_at"]


class DeliveryAttemptSerializer(serializers.ModelSerializer[DeliveryAttempt]):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "at", "status_code", "latency_ms", "error", "succeeded", "replay"]
        read_only_fields = fields


class WebhookDeliverySerializer(StrictModelSerializer):
    event_type = serializers.CharField(source="event.type", read_only=True)
    attempt_log = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "tenant",
            "subscription",
            "event",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "created_at",
            "attempt_log",
        ]
        read_only_fields = fields


# --------------------------------------------------------------------------- KPI documents


class KpiQuerySerializer(StrictSerializer):
    tenant = serializers.IntegerField(required=False, help_text="Limit to one of your tenants.")
    location = serializers.IntegerField(required=False)
    charge_point = serializers.IntegerField(required=False)


class PeriodQuerySerializer(KpiQuerySerializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": ["Must be after start."]})
        if (attrs["end"] - attrs["start"]).days > 400:
            raise serializers.ValidationError({"end": ["At most 400 days."]})
        return attrs


class SeriesQuerySerializer(PeriodQuerySerializer):
    granularity = serializers.ChoiceField(choices=Granularity.choices, default=Granularity.HOUR)


class ChargerRefSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    identity = serializers.CharField()
    last_seen_at = serializers.DateTimeField(allow_null=True)


class FaultedConnectorSerializer(serializers.Serializer[Any]):
    charge_point_id = serializers.IntegerField()
    identity = serializers.CharField()
    connector_id = serializers.IntegerField()
    error_code = serializers.CharField()
    since = serializers.DateTimeField(allow_null=True)


class LiveKpiSerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    chargers = serializers.IntegerField()
    chargers_online = serializers.IntegerField()
    power_w = serializers.IntegerField()
    active_sessions = serializers.IntegerField()
    energy_today_wh = serializers.IntegerField()
    energy_month_wh = serializers.IntegerField()
    offline_chargers = ChargerRefSerializer(many=True)
    faulted_connectors = FaultedConnectorSerializer(many=True)
    connectors_by_status = serializers.DictField(child=serializers.IntegerField())
    open_alerts = serializers.IntegerField()


class ChargerPeriodSerializer(serializers.Serializer[Any]):
    charge_point_id = serializers.IntegerField()
    availability = serializers.FloatField(allow_null=True)
    utilisation = serializers.FloatField(allow_null=True)
    up_s = serializers.FloatField()
    down_s = serializers.FloatField()
    occupied_s = serializers.FloatField()


class PeriodKpiSerializer(serializers.Serializer[Any]):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    sessions_started = serializers.IntegerField()
    sessions_ended = serializers.IntegerField()
    sessions_successful = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True)
    energy_wh = serializers.IntegerField()
    avg_session_duration_s = serializers.FloatField(allow_null=True)
    avg_session_energy_wh = serializers.FloatField(allow_null=True)
    availability = serializers.FloatField(allow_null=True, help_text="Up time / (up + down) connector time.")
    utilisation = serializers.FloatField(allow_null=True, help_text="Occupied / known connector time.")
    chargers = ChargerPeriodSerializer(many=True)


class SeriesPointSerializer(serializers.Serializer[Any]):
    bucket = serializers.DateTimeField()
    sessions_started = serializers.IntegerField()
    sessions_ended = serializers.IntegerField()
    sessions_successful = serializers.IntegerField()
    energy_wh = serializers.IntegerField()
    duration_s = serializers.IntegerField()


class VehicleModelSerializer(serializers.Serializer[Any]):
    vehicle_model = serializers.CharField()
    charge_point_id = serializers.IntegerField()
    sessions = serializers.IntegerField()
    failed = serializers.IntegerField()
    failure_rate = serializers.FloatField()
