"""API shapes of the energy app."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.energy.models import BuildingLoadReading, GridNode, GridSignal, TimeOfUseLimit
from apps.stations.models import ChargePoint, Location
from apps.tenants.scoping import ScopedRelatedField, TenantOwnedSerializer


def _same_tenant(attrs: dict[str, Any], instance: Any, *names: str) -> None:
    tenant = attrs.get("tenant") or getattr(instance, "tenant", None)
    if tenant is None:
        return
    errors = {}
    for name in names:
        value = attrs.get(name)
        if value is not None and value.tenant_id != tenant.pk:
            errors[name] = ["Belongs to another tenant."]
    if errors:
        raise serializers.ValidationError(errors)


class GridNodeSerializer(TenantOwnedSerializer):
    location = ScopedRelatedField(queryset=Location.objects.all())
    # `parent` shadows Field.parent (the enclosing serializer) for mypy only; DRF binds fields by name
    parent = ScopedRelatedField(queryset=GridNode.objects.all(), required=False, allow_null=True)  # type: ignore[assignment]
    charge_point = ScopedRelatedField(queryset=ChargePoint.objects.all(), required=False, allow_null=True)

    class Meta:
        model = GridNode
        fields = [
            "id",
            "tenant",
            "location",
            "parent",
            "name",
            "kind",
            "charge_point",
            "max_power_w",
            "max_current_a",
            "phases",
            "voltage_v",
            "safety_margin_pct",
            "strategy",
            "default_dwell_minutes",
            "phase_rotation",
            "rejects_profiles",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "rejects_profiles", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        _same_tenant(attrs, self.instance, "location", "parent", "charge_point")
        return attrs


class TimeOfUseLimitSerializer(TenantOwnedSerializer):
    node = ScopedRelatedField(queryset=GridNode.objects.all())
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), allow_empty=False, max_length=7
    )

    class Meta:
        model = TimeOfUseLimit
        fields = [
            "id",
            "tenant",
            "node",
            "label",
            "weekdays",
            "start",
            "end",
            "percent",
            "max_power_w",
            "max_current_a",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        _same_tenant(attrs, self.instance, "node")
        merged = {**({} if self.instance is None else vars(self.instance)), **attrs}
        if all(merged.get(k) is None for k in ("percent", "max_power_w", "max_current_a")):
            raise serializers.ValidationError({"percent": ["Give percent, max_power_w and/or max_current_a."]})
        return attrs


class GridSignalSerializer(TenantOwnedSerializer):
    """A capacity limit for a node, valid on [valid_from, valid_until). Rows are never changed (audit trail)."""

    node = ScopedRelatedField(queryset=GridNode.objects.all())
    max_power_w = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    max_current_a = serializers.IntegerField(min_value=0, required=False, allow_null=True)

    class Meta:
        model = GridSignal
        fields = [
            "id",
            "tenant",
            "node",
            "max_power_w",
            "max_current_a",
            "valid_from",
            "valid_until",
            "source",
            "reference",
            "created_by",
            "api_key",
            "created_at",
        ]
        read_only_fields = ["id", "created_by", "api_key", "created_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        _same_tenant(attrs, self.instance, "node")
        if attrs.get("max_power_w") is None and attrs.get("max_current_a") is None:
            raise serializers.ValidationError({"max_power_w": ["Give max_power_w and/or max_current_a."]})
        if attrs["valid_until"] <= attrs["valid_from"]:
            raise serializers.ValidationError({"valid_until": ["Must be after valid_from."]})
        return attrs


class BuildingLoadReadingSerializer(TenantOwnedSerializer):
    node = ScopedRelatedField(queryset=GridNode.objects.all())
    power_w = serializers.IntegerField(min_value=0, required=False, allow_null=True)

    class Meta:
        model = BuildingLoadReading
        fields = ["id", "tenant", "node", "at", "power_w", "current_l1_a", "current_l2_a", "current_l3_a", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        _same_tenant(attrs, self.instance, "node")
        currents = [attrs.get(f"current_l{n}_a") for n in (1, 2, 3)]
        if attrs.get("power_w") is None and any(c is None for c in currents):
            raise serializers.ValidationError({"power_w": ["Give power_w or all three phase currents."]})
        for n, c in enumerate(currents, 1):
            if c is not None and c < 0:
                raise serializers.ValidationError({f"current_l{n}_a": ["Must not be negative."]})
        return attrs
