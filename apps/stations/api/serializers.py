"""API serializers of locations, charge points, EVSEs, connectors and commands."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from functools import cache
from typing import Any

from ocpp.messages import get_validator
from rest_framework import serializers

from apps.core.api.serializers import StrictModelSerializer, StrictSerializer
from apps.stations import services
from apps.stations.models import (
    CertificateAuthority,
    CertificateSigningRequest,
    ChargePoint,
    Command,
    Connector,
    Evse,
    InstalledCertificate,
    Location,
    SecurityEvent,
)
from apps.tenants.scoping import ScopedRelatedField, TenantOwnedSerializer


class LocationSerializer(TenantOwnedSerializer):
    class Meta:
        model = Location
        fields = [
            "id", "tenant", "name", "ocpi_id", "address", "postal_code", "city", "country", "latitude",
            "longitude", "timezone", "parking_type", "publish", "opening_24_7", "created_at", "updated_at",
            "decommissioned_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at", "decommissioned_at"]


class ChargePointSerializer(TenantOwnedSerializer):
    location = ScopedRelatedField(queryset=Location.objects.all(), required=False, allow_null=True)

    class Meta:
        model = ChargePoint
        fields = [
            "id", "tenant", "location", "identity", "registration_status", "lenient", "security_profile",
            "security_profile_pending", "max_power_w", "phases",
            "charging_rate_unit", "heartbeat_interval",
            # reported by the charger / the platform
            "vendor", "model", "serial_number", "charge_box_serial_number", "firmware_version", "iccid", "imsi",
            "meter_type", "meter_serial_number", "online", "last_seen_at", "last_heartbeat_at", "last_boot_at",
            "status", "error_code", "vendor_error_code", "status_info", "status_at", "configuration",
            "local_list_version", "firmware_status", "diagnostics_status", "password_changed_at", "password_pending",
            "created_at", "decommissioned_at", "signed_firmware_status", "signed_firmware_status_at",
            "signed_firmware_request_id", "log_status", "log_status_at", "log_request_id",
        ]  # fmt: skip
        read_only_fields = [
            "vendor", "model", "serial_number", "charge_box_serial_number", "firmware_version", "iccid", "imsi",
            "meter_type", "meter_serial_number", "online", "last_seen_at", "last_heartbeat_at", "last_boot_at",
            "status", "error_code", "vendor_error_code", "status_info", "status_at", "configuration",
            "local_list_version", "firmware_status", "diagnostics_status", "password_changed_at", "password_pending",
            "created_at", "decommissioned_at", "signed_firmware_status", "signed_firmware_status_at",
            "signed_firmware_request_id", "log_status", "log_status_at", "log_request_id", "security_profile_pending",
        ]  # fmt: skip

    def validate_identity(self, value: str) -> str:
        if self.instance is not None and value != self.instance.identity:
            raise serializers.ValidationError("The identity cannot change: register a new charge point.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        location = attrs.get("location")
        tenant = attrs.get("tenant") or getattr(self.instance, "tenant", None)
        if location is not None and tenant is not None and location.tenant_id != tenant.pk:
            raise serializers.ValidationError({"location": ["The location belongs to another tenant."]})
        return attrs


class ChargePointCreateSerializer(ChargePointSerializer):
    password = serializers.CharField(
        write_only=True, required=False, min_length=16, max_length=40, help_text="Generated when omitted."
    )

    class Meta(ChargePointSerializer.Meta):
        fields = [*ChargePointSerializer.Meta.fields, "password"]


class ChargePointCreatedSerializer(ChargePointSerializer):
    password = serializers.CharField(read_only=True, help_text="HTTP Basic password; shown only once.")

    class Meta(ChargePointSerializer.Meta):
        fields = [*ChargePointSerializer.Meta.fields, "password"]


class EvseSerializer(TenantOwnedSerializer):
    charge_point = ScopedRelatedField(queryset=ChargePoint.objects.all())

    class Meta:
        model = Evse
        fields = [
            "id", "tenant", "charge_point", "connector_id", "evse_uid", "status", "error_code", "vendor_error_code",
            "status_info", "status_at", "created_at", "decommissioned_at",
        ]  # fmt: skip
        read_only_fields = [
            "status", "error_code", "vendor_error_code", "status_info", "status_at", "created_at", "decommissioned_at",
        ]  # fmt: skip

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        charge_point = attrs.get("charge_point") or getattr(self.instance, "charge_point", None)
        tenant = attrs.get("tenant")
        if charge_point is not None and tenant is not None and charge_point.tenant_id != tenant.pk:
            raise serializers.ValidationError({"charge_point": ["The charge point belongs to another tenant."]})
        if self.instance is not None and charge_point is not None and charge_point.pk != self.instance.charge_point_id:
            raise serializers.ValidationError({"charge_point": ["An EVSE cannot move to another charge point."]})
        return attrs


class ConnectorSerializer(StrictModelSerializer):
    evse = ScopedRelatedField(queryset=Evse.objects.all())

    class Meta:
        model = Connector
        fields = [
            "id", "evse", "standard", "format", "power_type", "max_voltage", "max_amperage", "max_electric_power",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]


class CommandSerializer(StrictModelSerializer):
    class Meta:
        model = Command
        fields = [
            "id", "tenant", "charge_point", "action", "payload", "status", "response", "error", "requested_by",
            "source", "created_at", "sent_at", "completed_at",
        ]  # fmt: skip
        read_only_fields = fields


class SecurityEventSerializer(StrictModelSerializer):
    class Meta:
        model = SecurityEvent
        fields = ["id", "tenant", "charge_point", "type", "timestamp", "tech_info", "critical", "received_at"]
        read_only_fields = fields


class SigningRequestSerializer(StrictModelSerializer):
    class Meta:
        model = CertificateSigningRequest
        fields = [
            "id", "tenant", "charge_point", "csr", "common_name", "status", "detail", "certificate", "serial_number",
            "not_after", "command", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class InstalledCertificateSerializer(StrictModelSerializer):
    class Meta:
        model = InstalledCertificate
        fields = [
            "id", "tenant", "charge_point", "certificate_type", "hash_algorithm", "issuer_name_hash",
            "issuer_key_hash", "serial_number", "subject", "not_after", "certificate", "source", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class CertificateAuthoritySerializer(StrictModelSerializer):
    """The tenant's CSMS CA: its certificate only (the private key never leaves the server)."""

    class Meta:
        model = CertificateAuthority
        fields = ["id", "tenant", "certificate", "not_after", "created_at"]
        read_only_fields = fields


class RotatedPasswordSerializer(serializers.Serializer[Any]):
    password = serializers.CharField(help_text="The new HTTP Basic password; shown only once.")
    command = CommandSerializer(allow_null=True, help_text="The ChangeConfiguration AuthorizationKey sent, if online.")


class EmptySerializer(StrictSerializer):
    pass


# --------------------------------------------------------------------------- command inputs from the OCPP schemas


INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def slug_for(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", action).lower()


def _field_for(path: str, schema: dict[str, Any], required: bool) -> serializers.Field[Any, Any, Any, Any]:
    """One DRF field for one JSON-schema property, nested objects and arrays included (so the OpenAPI document
    shows the wire shape, and unknown nested fields are refused)."""
    kwargs: dict[str, Any] = {"required": required}
    kind = schema.get("type")
    if "enum" in schema:
        return serializers.ChoiceField(choices=schema["enum"], **kwargs)
    if kind == "string" and schema.get("format") == "date-time":
        return serializers.DateTimeField(**kwargs)
    if kind == "string":
        return serializers.CharField(
            max_length=schema.get("maxLength"), allow_blank=True, trim_whitespace=False, **kwargs
        )
    if kind == "integer":
        # OCPP's integers are 32-bit on chargers (and in our columns: a requestId beyond them was a 500)
        return serializers.IntegerField(
            min_value=schema.get("minimum", INT32_MIN), max_value=schema.get("maximum", INT32_MAX), **kwargs
        )
    if kind == "number":
        return serializers.FloatField(**kwargs)
    if kind == "boolean":
        return serializers.BooleanField(**kwargs)
    if kind == "array":
        items = schema.get("items", {})
        if items.get("type") == "object":
            return _object_serializer(path, items)(many=True, **kwargs)
        return serializers.ListField(child=_field_for(path, items, True), **kwargs)
    if kind == "object" and "properties" in schema:
        return _object_serializer(path, schema)(**kwargs)
    return serializers.DictField(**kwargs)


def _object_serializer(path: str, schema: dict[str, Any]) -> type[StrictSerializer]:
    required = set(schema.get("required", []))
    fields = {
        name: _field_for(f"{path}{name[:1].upper()}{name[1:]}", spec, name in required)
        for name, spec in schema.get("properties", {}).items()
    }
    return type(f"{path}Serializer", (StrictSerializer,), {**fields, "__doc__": schema.get("title", path)})


def _wire(value: Any) -> Any:
    """Validated data as JSON values: dates in UTC with a Z, nested serializer output as plain dicts/lists."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wire(item) for item in value]
    return value


class CommandInputSerializer(StrictSerializer):
    """Base of the generated command inputs: the payload is then checked as `send_command` will check it
    (1.6 schema and specification, and the charger in the context: connectors, configuration, list version)."""

    ocpp_action: str = ""

    def to_payload(self) -> dict[str, Any]:
        return _wire(dict(self.validated_data))  # type: ignore[no-any-return]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        charge_point = self.context.get("charge_point")
        if charge_point is not None:
            payload = _wire(dict(attrs))
            if self.ocpp_action == "GetDiagnostics" and "location" not in payload:
                payload["location"] = services.diagnostics_location(token="0" * 32)
            if self.ocpp_action == "GetLog":
                payload["log"] = {
                    "remoteLocation": services.diagnostics_location(token="0" * 32),
                    **payload.get("log", {}),
                }
            # InvalidCommand (an ApplicationError) goes to the API's error handler as it is: fields nested as the
            # payload, the message naming the first field by its dotted path
            services.command_validate(charge_point=charge_point, action=self.ocpp_action, payload=payload)
        return attrs


def _resolved(node: Any, definitions: dict[str, Any]) -> Any:
    """The schema with its local `$ref`s (`#/definitions/X`, as the security messages' schemas use) inlined."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            return _resolved(definitions[ref.rsplit("/", 1)[-1]], definitions)
        return {key: _resolved(value, definitions) for key, value in node.items() if key != "definitions"}
    if isinstance(node, list):
        return [_resolved(item, definitions) for item in node]
    return node


# The `ocpp` package validates these two CALLs with a schema parsed into Decimals (their multipleOf 0.1), but caches
# one validator per action whichever float parser built it: asked for with floats first, the cached validator
# raises TypeError (Decimal / float) on every later SetChargingProfile the package checks in this process, which
# made the demo simulator drop its connection on each profile the platform sent. Ask for them as the package does.
DECIMAL_SCHEMAS = frozenset({"SetChargingProfile", "RemoteStartTransaction"})


@cache
def command_serializer(action: str) -> type[CommandInputSerializer]:
    """A strict serializer for an OCPP 1.6 command, built from the package's JSON schema (camelCase, as on the
    wire, nested objects and arrays as in the schema)."""
    parse_float = decimal.Decimal if action in DECIMAL_SCHEMAS else float
    raw = get_validator(2, action, "1.6", parse_float=parse_float).schema
    schema = _resolved(raw, raw.get("definitions", {}))
    required = set(schema.get("required", []))
    if action == "GetDiagnostics":
        required.discard("location")  # the platform's own upload URL when omitted
    if action == "GetLog":  # the platform's own upload URL when `log` or its remoteLocation is omitted
        required.discard("log")
        log = schema["properties"]["log"]
        log["required"] = [name for name in log.get("required", []) if name != "remoteLocation"]
    fields = {
        name: _field_for(f"{action}Command{name[:1].upper()}{name[1:]}", spec, name in required)
        for name, spec in schema.get("properties", {}).items()
    }
    attrs: dict[str, Any] = {**fields, "ocpp_action": action, "__doc__": f"OCPP 1.6 {action}.req payload."}
    return type(f"{action}CommandSerializer", (CommandInputSerializer,), attrs)
