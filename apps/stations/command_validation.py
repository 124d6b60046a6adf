"""Commands that cannot be wrong on the wire.

Every OCPP 1.6 command payload, whoever sends it (API, admin, sessions, energy, the platform itself), is
checked here before anything is recorded or sent:

1. against the 1.6 JSON schema shipped in the `ocpp` package, with the formats checked (`date-time`, `uri`)
   and numbers read as decimals (a float schema refuses 7.1 A as "not a multiple of 0.1");
2. against the rules of the 1.6 specification the schema cannot express (connector 0 only where the
   specification gives it a meaning, intervals and durations > 0, schedule periods in order, ...);
3. against what we know of the charger: its connectors (EVSE rows and `NumberOfConnectors`), its last
   configuration read (read-only and unknown keys, `ChargingScheduleMaxPeriods`, allowed rate units, list
   lengths), its phases and its local list version.

A payload that fails raises `InvalidCommand` naming each field (dotted path in the payload, e.g.
`csChargingProfiles.chargingSchedule.chargingSchedulePeriod.1.startPeriod`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation, localcontext
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from jsonschema import Draft4Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError as SchemaError
from ocpp.v16.enums import Measurand

from apps.core.errors import ApplicationError


class InvalidCommand(ApplicationError):
    """The command payload is wrong for the OCPP 1.6 schema, the specification or this charger (HTTP 400).

    `paths`: messages by dotted path in the payload; `fields`: the same nested as the payload, the API's error
    shape (`{"csChargingProfiles": {"chargingSchedule": {"chargingSchedulePeriod": {"1": {"startPeriod": [...]}}}}}`);
    the message names the first field by its dotted path."""

    def __init__(self, action: str, paths: dict[str, list[str]]) -> None:
        where, messages = next(iter(paths.items()))
        super().__init__(f"{where}: {messages[0]}", code="validation_error", fields=nested(paths), status_code=400)
        self.action = action
        self.paths = paths


def nested(paths: dict[str, list[str]]) -> dict[str, Any]:
    """{"a.0.b": [m]} -> {"a": {"0": {"b": [m]}}}; messages about a field that also has nested errors go under
    its `non_field_errors`, as DRF does."""
    tree: dict[str, Any] = {}
    for path, messages in paths.items():
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if isinstance(child, list):
                child = node[part] = {"non_field_errors": child}
            node = child
        if isinstance(node.get(leaf), dict):
            node[leaf].setdefault("non_field_errors", []).extend(messages)
        else:
            node.setdefault(leaf, []).extend(messages)
    return tree


# --------------------------------------------------------------------------- what we know of the charger


@dataclass(frozen=True)
class ChargerFacts:
    """What the platform knows about one charger; empty where it knows nothing (then nothing is refused)."""

    identity: str = ""
    connector_ids: frozenset[int] = frozenset()
    configuration: Mapping[str, Any] = field(default_factory=dict)
    configuration_complete: bool = False
    local_list_version: int = 0
    phases: int = 3
    security_profile: int = 0

    def config(self, key: str) -> str | None:
        entry = self.configuration.get(key)
        value = entry.get("value") if isinstance(entry, Mapping) else None
        return value if isinstance(value, str) else None

    def config_int(self, key: str) -> int | None:
        value = self.config(key)
        return int(value) if value is not None and re.fullmatch(r"\s*\d+\s*", value) else None

    def config_bool(self, key: str) -> bool | None:
        value = (self.config(key) or "").strip().lower()
        return {"true": True, "false": False}.get(value)

    def config_list(self, key: str) -> list[str] | None:
        value = self.config(key)
        return None if value is None else [item.strip() for item in value.split(",") if item.strip()]

    def readonly(self, key: str) -> bool:
        entry = self.configuration.get(key)
        return isinstance(entry, Mapping) and entry.get("readonly") is True


def facts_for(charge_point_id: int) -> ChargerFacts:
    """The charger's facts as stored now (two queries)."""
    from apps.stations.models import ChargePoint, Evse

    row = (
        ChargePoint.objects.filter(pk=charge_point_id)
        .values(
            "identity", "configuration", "configuration_complete", "local_list_version", "phases", "security_profile"
        )
        .first()
    )
    if row is None:
        return ChargerFacts()
    connectors = set(Evse.objects.filter(charge_point_id=charge_point_id).values_list("connector_id", flat=True))
    configuration = row["configuration"] if isinstance(row["configuration"], dict) else {}
    facts = ChargerFacts(
        identity=row["identity"],
        configuration=configuration,
        configuration_complete=row["configuration_complete"],
        local_list_version=row["local_list_version"],
        phases=row["phases"],
        security_profile=row["security_profile"],
    )
    declared = facts.config_int("NumberOfConnectors")
    if declared:
        connectors |= set(range(1, declared + 1))
    return replace(facts, connector_ids=frozenset(connectors))


# --------------------------------------------------------------------------- the 1.6 JSON schemas

_FORMATS = FormatChecker(formats=())
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE)


@_FORMATS.checks("date-time")
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the type keyword reports it
    if not _RFC3339.match(value):
        return False
    try:
        return parse_datetime(value.upper().replace("Z", "+00:00")) is not None
    except ValueError:
        return False


@_FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc) and not any(ch.isspace() for ch in value)


MAX_DIGITS = 400  # a decimal with more digits than this between its magnitude and the step is no OCPP figure


def _multiple_of(validator: Any, step: Any, instance: Any, schema: Any) -> Any:
    """`multipleOf` on decimals at any magnitude: jsonschema's `instance % step` raises DivisionImpossible in the
    default 28-digit context for values such as 6.3e+204 (a 500 found by make api-fuzz)."""
    if not validator.is_type(instance, "number"):
        return
    value, unit = Decimal(str(instance)), Decimal(str(step))
    if value == 0:
        return
    digits = abs(value.adjusted() - unit.adjusted()) + len(unit.as_tuple().digits) + 2
    ok = False
    if digits <= MAX_DIGITS:
        try:
            with localcontext() as context:
                context.prec = max(28, digits)
                ok = value % unit == 0
        except InvalidOperation:
            ok = False
    if not ok:
        yield SchemaError(f"{instance} is not a multiple of {step}")


_DecimalValidator = validators.extend(Draft4Validator, {"multipleOf": _multiple_of})


@cache
def _validator(action: str) -> Draft4Validator:
    """The request schema of a 1.6 action, read with decimals (its `multipleOf: 0.1` needs them)."""
    text = (resources.files("ocpp.v16") / "schemas" / f"{action}.json").read_text(encoding="utf-8-sig")
    return _DecimalValidator(json.loads(text, parse_float=Decimal), format_checker=_FORMATS)  # type: ignore[no-any-return]


def wire_form(payload: Any) -> Any:
    """The payload as the charger reads it: through JSON, numbers with a fraction as decimals."""
    return json.loads(json.dumps(payload, default=str), parse_float=Decimal)


class _Errors:
    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, path: list[Any] | str, message: str) -> None:
        where = path if isinstance(path, str) else ".".join(str(part) for part in path)
        self.fields.setdefault(where or "payload", []).append(message)

    def __bool__(self) -> bool:
        return bool(self.fields)


def _schema_message(error: SchemaError) -> str:
    if error.validator == "format":
        if error.validator_value == "date-time":
            return "Not an RFC 3339 date-time with a time zone (e.g. 2030-01-01T00:00:00Z)."
        return "Not an absolute URI (e.g. https://host/path)."
    if error.validator == "enum":
        return f"{error.instance!r} is not one of: {', '.join(map(str, error.validator_value))}."
    if error.validator == "multipleOf":
        return f"{error.instance} has more than one decimal (steps of {error.validator_value})."
    return f"{error.message[:1].upper()}{error.message[1:]}."


def _schema_errors(action: str, payload: Any, errors: _Errors) -> None:
    for error in sorted(_validator(action).iter_errors(payload), key=lambda e: list(map(str, e.absolute_path))):
        path = list(error.absolute_path)
        instance = error.instance
        if error.validator == "required" and isinstance(instance, dict):
            for name in error.validator_value:
                if name not in instance:
                    errors.add([*path, name], "This field is required.")
        elif error.validator == "additionalProperties" and isinstance(instance, dict):
            known = error.schema.get("properties", {})
            for name in instance:
                if name not in known:
                    errors.add([*path, name], "Unknown field.")
        else:
            errors.add(path, _schema_message(error))


# --------------------------------------------------------------------------- the specification and the charger


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not _is_date_time(value):
        return None
    return parse_datetime(value.upper().replace("Z", "+00:00"))


def _connector(
    errors: _Errors, facts: ChargerFacts, path: str, value: Any, *, zero: bool, action: str, zero_why: str = ""
) -> None:
    number = _int(value)
    if number is None:
        return
    if number < 0:
        errors.add(
            path, "Must be 0 (the whole charger) or a connector id." if zero else "Must be a connector id (1 or more)."
        )
    elif number == 0 and not zero:
        errors.add(path, zero_why or f"Connector 0 is not allowed for {action}: give a connector id (1 or more).")
    elif number > 0 and facts.connector_ids and number not in facts.connector_ids:
        known = ", ".join(str(n) for n in sorted(facts.connector_ids))
        errors.add(path, f"Charge point {facts.identity} has no connector {number} (its connectors: {known}).")


def _at_least(errors: _Errors, path: str, value: Any, minimum: int, what: str = "") -> None:
    number = _int(value)
    if number is not None and number < minimum:
        errors.add(path, f"Must be {'greater than 0' if minimum == 1 else f'at least {minimum}'}{what}.")


def _not_blank(errors: _Errors, path: str, value: Any) -> None:
    if isinstance(value, str) and not value.strip():
        errors.add(path, "May not be blank.")


_UNIT_NAMES = {"A": "Current", "W": "Power"}


def _rate_unit(errors: _Errors, facts: ChargerFacts, path: str, unit: Any) -> None:
    allowed = facts.config_list("ChargingScheduleAllowedChargingRateUnit")
    if isinstance(unit, str) and allowed is not None and _UNIT_NAMES.get(unit) not in allowed:
        errors.add(
            path,
            f"Charge point {facts.identity} takes schedules in {', '.join(allowed) or 'no unit'} only "
            f"(ChargingScheduleAllowedChargingRateUnit), not {unit} ({_UNIT_NAMES.get(unit, unit)}).",
        )


def _charging_profile(
    errors: _Errors, facts: ChargerFacts, path: str, profile: Any, *, now: dt.datetime, remote_start: bool = False
) -> None:
    if not isinstance(profile, dict):
        return
    purpose = profile.get("chargingProfilePurpose")
    kind = profile.get("chargingProfileKind")
    _at_least(errors, f"{path}.stackLevel", profile.get("stackLevel"), 0)
    max_level = facts.config_int("ChargeProfileMaxStackLevel")
    level = _int(profile.get("stackLevel"))
    if max_level is not None and level is not None and level > max_level:
        errors.add(f"{path}.stackLevel", f"At most {max_level} on this charger (ChargeProfileMaxStackLevel).")
    if remote_start:
        if purpose is not None and purpose != "TxProfile":
            errors.add(
                f"{path}.chargingProfilePurpose", "A profile sent with RemoteStartTransaction must be TxProfile."
            )
        if "transactionId" in profile:
            errors.add(f"{path}.transactionId", "Not allowed with RemoteStartTransaction (the transaction is new).")
    elif "transactionId" in profile and purpose != "TxProfile":
        errors.add(f"{path}.transactionId", "Only a TxProfile names a transaction.")
    if kind == "Recurring" and "recurrencyKind" not in profile:
        errors.add(f"{path}.recurrencyKind", "Required for a Recurring profile (Daily or Weekly).")
    if kind != "Recurring" and "recurrencyKind" in profile:
        errors.add(f"{path}.recurrencyKind", "Only a Recurring profile has a recurrencyKind.")
    valid_from, valid_to = _when(profile.get("validFrom")), _when(profile.get("validTo"))
    if valid_to is not None and valid_to <= now:
        errors.add(f"{path}.validTo", "Already in the past: the charger would never apply this profile.")
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        errors.add(f"{path}.validTo", "Must be after validFrom.")
    schedule = profile.get("chargingSchedule")
    if not isinstance(schedule, dict):
        return
    where = f"{path}.chargingSchedule"
    _at_least(errors, f"{where}.duration", schedule.get("duration"), 1, " seconds")
    _rate_unit(errors, facts, f"{where}.chargingRateUnit", schedule.get("chargingRateUnit"))
    minimum = schedule.get("minChargingRate")
    if isinstance(minimum, (int, Decimal)) and minimum < 0:
        errors.add(f"{where}.minChargingRate", "May not be negative.")
    periods = schedule.get("chargingSchedulePeriod")
    if not isinstance(periods, list):
        return
    if not periods:
        errors.add(f"{where}.chargingSchedulePeriod", "At least one period is required.")
    most = facts.config_int("ChargingScheduleMaxPeriods")
    if most is not None and len(periods) > most:
        errors.add(
            f"{where}.chargingSchedulePeriod",
            f"{len(periods)} periods; charge point {facts.identity} takes at most {most} (ChargingScheduleMaxPeriods).",
        )
    previous: int | None = None
    for index, period in enumerate(periods):
        if not isinstance(period, dict):
            continue
        at = f"{where}.chargingSchedulePeriod.{index}"
        start = _int(period.get("startPeriod"))
        if start is not None:
            if index == 0 and start != 0:
                errors.add(f"{at}.startPeriod", "The first period must start at 0.")
            elif previous is not None and start <= previous:
                errors.add(f"{at}.startPeriod", f"Must be after the previous period's start ({previous} s).")
            previous = start
        limit = period.get("limit")
        if isinstance(limit, (int, Decimal)) and not isinstance(limit, bool) and limit < 0:
            errors.add(f"{at}.limit", "May not be negative.")
        phases = _int(period.get("numberPhases"))
        if phases is not None and not 1 <= phases <= facts.phases:
            errors.add(
                f"{at}.numberPhases",
                f"Must be 1 to {facts.phases} (charge point {facts.identity} has {facts.phases} phase"
                f"{'s' if facts.phases > 1 else ''}).",
            )


# ChangeConfiguration: the standard keys of OCPP 1.6 (section 9) and of its security whitepaper.
# kind: "bool", "int" (with its minimum, and maximum), "measurands" (comma-separated Measurand values), "text";
# readonly keys are refused outright.
@dataclass(frozen=True)
class _Key:
    kind: str
    minimum: int = 0
    maximum: int | None = None
    readonly: bool = False
    max_length_key: str = ""


_READONLY = _Key("text", readonly=True)
STANDARD_KEYS: dict[str, _Key] = {
    "AllowOfflineTxForUnknownId": _Key("bool"),
    "AuthorizationCacheEnabled": _Key("bool"),
    "AuthorizeRemoteTxRequests": _Key("bool"),
    "BlinkRepeat": _Key("int"),
    "ClockAlignedDataInterval": _Key("int"),  # 0: no clock-aligned data
    "ConnectionTimeOut": _Key("int", minimum=1),
    "ConnectorPhaseRotation": _Key("text", max_length_key="ConnectorPhaseRotationMaxLength"),
    "ConnectorPhaseRotationMaxLength": _READONLY,
    "GetConfigurationMaxKeys": _READONLY,
    "HeartbeatInterval": _Key("int", minimum=1),
    "LightIntensity": _Key("int", maximum=100),
    "LocalAuthorizeOffline": _Key("bool"),
    "LocalPreAuthorize": _Key("bool"),
    "MaxEnergyOnInvalidId": _Key("int"),
    "MeterValuesAlignedData": _Key("measurands", max_length_key="MeterValuesAlignedDataMaxLength"),
    "MeterValuesAlignedDataMaxLength": _READONLY,
    "MeterValuesSampledData": _Key("measurands", max_length_key="MeterValuesSampledDataMaxLength"),
    "MeterValuesSampledDataMaxLength": _READONLY,
    "MeterValueSampleInterval": _Key("int"),  # 0: no sampled data
    "MinimumStatusDuration": _Key("int"),
    "NumberOfConnectors": _READONLY,
    "ResetRetries": _Key("int"),
    "StopTransactionOnEVSideDisconnect": _Key("bool"),
    "StopTransactionOnInvalidId": _Key("bool"),
    "StopTxnAlignedData": _Key("measurands", max_length_key="StopTxnAlignedDataMaxLength"),
    "StopTxnAlignedDataMaxLength": _READONLY,
    "StopTxnSampledData": _Key("measurands", max_length_key="StopTxnSampledDataMaxLength"),
    "StopTxnSampledDataMaxLength": _READONLY,
    "SupportedFeatureProfiles": _READONLY,
    "SupportedFeatureProfilesMaxLength": _READONLY,
    "TransactionMessageAttempts": _Key("int"),
    "TransactionMessageRetryInterval": _Key("int", minimum=1),
    "UnlockConnectorOnEVSideDisconnect": _Key("bool"),
    "WebSocketPingInterval": _Key("int"),  # 0: no pings
    "LocalAuthListEnabled": _Key("bool"),
    "LocalAuthListMaxLength": _READONLY,
    "SendLocalListMaxLength": _READONLY,
    "ReserveConnectorZeroSupported": _READONLY,
    "ChargeProfileMaxStackLevel": _READONLY,
    "ChargingScheduleAllowedChargingRateUnit": _READONLY,
    "ChargingScheduleMaxPeriods": _READONLY,
    "ConnectorSwitch3to1PhaseSupported": _READONLY,
    "MaxChargingProfilesInstalled": _READONLY,
    "AuthorizationKey": _Key("text"),
    "SecurityProfile": _Key("int", maximum=3),
    "CpoName": _Key("text"),
}
_MEASURANDS = frozenset(m.value for m in Measurand)
WRITE_ONLY_KEYS = frozenset({"AuthorizationKey"})  # never reported by GetConfiguration


def _configuration_value(errors: _Errors, facts: ChargerFacts, key: str, value: str) -> None:
    spec = STANDARD_KEYS.get(key)
    if (spec is not None and spec.readonly) or facts.readonly(key):
        errors.add("key", f"{key} is read-only.")
        return
    if facts.configuration_complete and key not in facts.configuration and key not in WRITE_ONLY_KEYS:
        errors.add(
            "key", f"Charge point {facts.identity} has no configuration key {key} (per its last GetConfiguration)."
        )
        return
    if spec is None:
        return
    if key == "SecurityProfile" and re.fullmatch(r"\s*\d+\s*", value) and int(value) < facts.security_profile:
        errors.add(
            "value",
            f"Charge point {facts.identity} uses security profile {facts.security_profile}: a profile is never "
            "lowered (OCPP 1.6 security whitepaper).",
        )
    if key == "AuthorizationKey" and not 16 <= len(value) <= 40:
        errors.add("value", "An AuthorizationKey has 16 to 40 characters.")
    if spec.kind == "bool" and value.strip().lower() not in ("true", "false"):
        errors.add("value", f"{key} is true or false.")
    elif spec.kind == "int":
        if not re.fullmatch(r"-?\d+", value.strip()):
            errors.add("value", f"{key} is a whole number.")
        elif int(value) < spec.minimum or (spec.maximum is not None and int(value) > spec.maximum):
            span = (
                f"from {spec.minimum} to {spec.maximum}"
                if spec.maximum is not None
                else ("greater than 0" if spec.minimum == 1 else f"{spec.minimum} or more")
            )
            errors.add("value", f"{key} must be {span}.")
    elif spec.kind == "measurands":
        items = [item.strip() for item in value.split(",") if item.strip()]
        unknown = [item for item in items if item not in _MEASURANDS]
        if unknown:
            errors.add("value", f"Not OCPP 1.6 measurands: {', '.join(unknown)}.")
    if spec.max_length_key:
        most = facts.config_int(spec.max_length_key)
        count = len([item for item in value.split(",") if item.strip()])
        if most is not None and count > most:
            errors.add(
                "value", f"{count} items; charge point {facts.identity} takes at most {most} ({spec.max_length_key})."
            )


def _spec_errors(action: str, payload: dict[str, Any], facts: ChargerFacts, now: dt.datetime, errors: _Errors) -> None:
    get = payload.get
    if action == "ChangeAvailability":
        _connector(errors, facts, "connectorId", get("connectorId"), zero=True, action=action)
    elif action == "ChangeConfiguration":
        key, value = str(get("key", "")), str(get("value", ""))
        _not_blank(errors, "key", key)
        if key.strip():
            _configuration_value(errors, facts, key, value)
    elif action == "ClearChargingProfile":
        _connector(errors, facts, "connectorId", get("connectorId"), zero=True, action=action)
        _at_least(errors, "stackLevel", get("stackLevel"), 0)
    elif action == "DataTransfer":
        _not_blank(errors, "vendorId", get("vendorId"))
    elif action == "GetCompositeSchedule":
        _connector(errors, facts, "connectorId", get("connectorId"), zero=True, action=action)
        _at_least(errors, "duration", get("duration"), 1, " seconds")
        _rate_unit(errors, facts, "chargingRateUnit", get("chargingRateUnit"))
    elif action == "GetConfiguration":
        keys = get("key") or []
        for index, key in enumerate(keys):
            _not_blank(errors, f"key.{index}", key)
            if key in keys[:index]:
                errors.add(f"key.{index}", f"{key} is asked twice.")
        most = facts.config_int("GetConfigurationMaxKeys")
        if most is not None and len(keys) > most:
            errors.add(
                "key",
                f"{len(keys)} keys; charge point {facts.identity} answers at most {most} (GetConfigurationMaxKeys).",
            )
    elif action in ("GetDiagnostics", "UpdateFirmware"):
        _at_least(errors, "retries", get("retries"), 0)
        _at_least(errors, "retryInterval", get("retryInterval"), 1, " seconds")
        start, stop = _when(get("startTime")), _when(get("stopTime"))
        if start is not None and stop is not None and stop <= start:
            errors.add("stopTime", "Must be after startTime.")
    elif action == "RemoteStartTransaction":
        if "connectorId" in payload:
            _connector(errors, facts, "connectorId", get("connectorId"), zero=False, action=action)
        _not_blank(errors, "idTag", get("idTag"))
        if "chargingProfile" in payload:
            _charging_profile(errors, facts, "chargingProfile", get("chargingProfile"), now=now, remote_start=True)
    elif action == "ReserveNow":
        zero_supported = facts.config_bool("ReserveConnectorZeroSupported")
        _connector(
            errors,
            facts,
            "connectorId",
            get("connectorId"),
            zero=zero_supported is not False,
            action=action,
            zero_why=f"Charge point {facts.identity} cannot reserve connector 0 (ReserveConnectorZeroSupported false).",
        )
        _not_blank(errors, "idTag", get("idTag"))
        expiry = _when(get("expiryDate"))
        if expiry is not None and expiry <= now:
            errors.add("expiryDate", "Must be in the future.")
    elif action == "SendLocalList":
        _send_local_list(errors, facts, payload)
    elif action == "SetChargingProfile":
        profile = get("csChargingProfiles")
        purpose = profile.get("chargingProfilePurpose") if isinstance(profile, dict) else None
        if purpose == "ChargePointMaxProfile" and get("connectorId") != 0:
            errors.add("connectorId", "A ChargePointMaxProfile is set on connector 0 (the whole charger).")
        else:
            _connector(
                errors,
                facts,
                "connectorId",
                get("connectorId"),
                zero=purpose != "TxProfile",
                action=action,
                zero_why="A TxProfile is set on the connector of its transaction (1 or more), not on 0.",
            )
        _charging_profile(errors, facts, "csChargingProfiles", profile, now=now)
    elif action == "TriggerMessage":
        if "connectorId" in payload:
            if get("requestedMessage") not in ("MeterValues", "StatusNotification"):
                errors.add("connectorId", f"{get('requestedMessage')} is not about a connector: leave connectorId out.")
            else:
                _connector(errors, facts, "connectorId", get("connectorId"), zero=False, action=action)
    elif action == "UnlockConnector":
        _connector(errors, facts, "connectorId", get("connectorId"), zero=False, action=action)
    else:
        _security_errors(action, payload, facts, errors)


def _pem(errors: _Errors, path: str, value: Any, *, chain: bool = False) -> list[Any]:
    """An X.509 certificate (or a chain) in PEM; the parsed certificates, or [] with the error added."""
    from apps.stations import certificates

    if not isinstance(value, str):
        return []
    try:
        return certificates.load_chain(value) if chain else [certificates.load_certificate(value)]
    except certificates.CertificateError as error:
        errors.add(path, str(error))
        return []


def _security_errors(action: str, payload: dict[str, Any], facts: ChargerFacts, errors: _Errors) -> None:
    """The security whitepaper's commands (edition 3)."""
    get = payload.get
    if action == "InstallCertificate":
        for cert in _pem(errors, "certificate", get("certificate")):
            constraints = _basic_constraints(cert)
            if constraints is not None and not constraints:
                errors.add("certificate", "Not a CA certificate: InstallCertificate installs root certificates.")
    elif action == "CertificateSigned":
        chain = _pem(errors, "certificateChain", get("certificateChain"), chain=True)
        if chain:
            from apps.stations import certificates

            name = certificates.common_name(chain[0].subject)
            if facts.identity and name != facts.identity:
                errors.add(
                    "certificateChain",
                    f"The certificate's common name {name!r} is not the charge point id {facts.identity!r}.",
                )
    elif action == "ExtendedTriggerMessage":
        if "connectorId" in payload:
            if get("requestedMessage") not in ("MeterValues", "StatusNotification"):
                errors.add("connectorId", f"{get('requestedMessage')} is not about a connector: leave connectorId out.")
            else:
                _connector(errors, facts, "connectorId", get("connectorId"), zero=False, action=action)
    elif action in ("GetLog", "SignedUpdateFirmware"):
        _at_least(errors, "retries", get("retries"), 0)
        _at_least(errors, "retryInterval", get("retryInterval"), 1, " seconds")
        _at_least(errors, "requestId", get("requestId"), 0)
        if action == "GetLog":
            log = payload["log"] if isinstance(payload.get("log"), dict) else {}
            oldest, latest = _when(log.get("oldestTimestamp")), _when(log.get("latestTimestamp"))
            if oldest is not None and latest is not None and latest <= oldest:
                errors.add("log.latestTimestamp", "Must be after oldestTimestamp.")
        else:
            firmware = payload["firmware"] if isinstance(payload.get("firmware"), dict) else {}
            _pem(errors, "firmware.signingCertificate", firmware.get("signingCertificate"))
            signature = firmware.get("signature")
            if isinstance(signature, str):
                try:
                    base64.b64decode(signature, validate=True)
                except (ValueError, binascii.Error):
                    errors.add("firmware.signature", "Not base64 (the signature of the firmware file, base64-encoded).")
            retrieve, install = _when(firmware.get("retrieveDateTime")), _when(firmware.get("installDateTime"))
            if retrieve is not None and install is not None and install < retrieve:
                errors.add("firmware.installDateTime", "Must not be before retrieveDateTime.")


def _basic_constraints(cert: Any) -> bool | None:
    """Whether the certificate says it is a CA (None: it does not say)."""
    from cryptography import x509

    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return None


def _send_local_list(errors: _Errors, facts: ChargerFacts, payload: dict[str, Any]) -> None:
    version = _int(payload.get("listVersion"))
    if version is not None and version <= facts.local_list_version:
        errors.add(
            "listVersion",
            f"Must be greater than charge point {facts.identity}'s current list version ({facts.local_list_version}).",
        )
    entries = payload.get("localAuthorizationList") or []
    full = payload.get("updateType") == "Full"
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        tag = entry.get("idTag")
        _not_blank(errors, f"localAuthorizationList.{index}.idTag", tag)
        if isinstance(tag, str):
            if tag in seen:
                errors.add(f"localAuthorizationList.{index}.idTag", f"{tag} is in the list twice.")
            seen.add(tag)
        if full and "idTagInfo" not in entry:
            errors.add(f"localAuthorizationList.{index}.idTagInfo", "Required in a Full update.")
    most = facts.config_int("SendLocalListMaxLength")
    if most is not None and len(entries) > most:
        errors.add(
            "localAuthorizationList",
            f"{len(entries)} entries; charge point {facts.identity} takes at most {most} per message "
            "(SendLocalListMaxLength).",
        )
    size = facts.config_int("LocalAuthListMaxLength")
    if full and size is not None and len(entries) > size:
        errors.add(
            "localAuthorizationList",
            f"{len(entries)} entries; charge point {facts.identity}'s list holds at most {size} "
            "(LocalAuthListMaxLength).",
        )


def check_command(
    *, action: str, payload: Any, facts: ChargerFacts | None = None, now: dt.datetime | None = None
) -> None:
    """Raise InvalidCommand unless `payload` is a valid 1.6 `action` request for this charger."""
    facts = facts or ChargerFacts()
    errors = _Errors()
    wire = wire_form(payload)
    _schema_errors(action, wire, errors)
    if not errors and isinstance(wire, dict):
        _spec_errors(action, wire, facts, now or timezone.now(), errors)
    if errors:
        raise InvalidCommand(action, errors.fields)
