"""Inline schema validation of incoming CALLs with the OCPP 1.6 error codes, and the lenient mode for vendor quirks.

The `ocpp` package validates in a thread pool by default (`ASYNC_VALIDATION`), which turned p99 latency
from ~5 ms into ~950 ms at 1,000 chargers (PITFALLS.md): we validate inline, with the package's cached
Draft-4 validators, and map schema failures to the 1.6 CallError codes (the package maps a missing
property to ProtocolError and uses the 2.0 spelling FormatViolation; 1.6 says OccurenceConstraintViolation
and FormationViolation).
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import ocpp.messages
from jsonschema.exceptions import ValidationError as SchemaError
from ocpp.exceptions import (
    FormationViolationError,
    OccurenceConstraintViolationError,
    OCPPError,
    PropertyConstraintViolationError,
    TypeConstraintViolationError,
)
from ocpp.messages import get_validator

ocpp.messages.ASYNC_VALIDATION = False

# sampledValue enums we can drop or repair in lenient mode
_DROP_SAMPLE_ON = {"measurand", "unit"}
_REMOVE_KEY_ON = {"context", "location", "phase", "format"}
_MAX_REPAIRS = 50


@dataclass
class Checked:
    payload: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def to_ocpp_error(error: SchemaError, action: str) -> OCPPError:
    where = ".".join(str(p) for p in error.absolute_path) or "payload"
    details = {"cause": f"{action}: {where}: {error.message}"}
    if error.validator in ("type", "maxLength"):
        return TypeConstraintViolationError(details=details)
    if error.validator == "required":
        return OccurenceConstraintViolationError(details=details)
    if error.validator == "additionalProperties":
        return FormationViolationError(details=details)
    return PropertyConstraintViolationError(details=details)


def _number(value: str, kind: str) -> int | float | None:
    try:
        number = Decimal(value.strip())
    except (InvalidOperation, AttributeError):
        return None
    if kind == "integer":
        return int(number) if number == number.to_integral_value() else None
    return float(number)


def _repair(payload: Any, error: SchemaError) -> str | None:
    """Fix one known vendor quirk in place; a warning describing it, or None when this error is not a quirk."""
    path = list(error.absolute_path)
    if not path and error.validator != "additionalProperties":
        return None
    parent: Any = payload
    for part in path[:-1]:
        parent = parent[part]
    key = path[-1] if path else None
    where = ".".join(str(p) for p in path)
    if error.validator == "type" and isinstance(error.instance, str):
        expected = error.validator_value
        kinds = expected if isinstance(expected, list) else [expected]
        for kind in ("integer", "number"):
            if kind in kinds:
                number = _number(error.instance, kind)
                if number is not None:
                    parent[key] = number
                    return f"{where}: number sent as string"
        return None
    if error.validator == "type" and error.validator_value == "string" and isinstance(error.instance, int | float):
        parent[key] = str(error.instance)
        return f"{where}: string sent as number"
    if error.validator == "enum" and key in _REMOVE_KEY_ON and "sampledValue" in path:
        del parent[key]
        return f"{where}: unknown value {error.instance!r} ignored"
    if error.validator == "enum" and key in _DROP_SAMPLE_ON and "sampledValue" in path:
        samples = payload
        index = path.index("sampledValue")
        for part in path[: index + 1]:
            samples = samples[part]
        samples.pop(path[index + 1])
        return f"{where}: sampled value with unknown {key} {error.instance!r} not stored"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = [name for name in error.instance if name not in allowed]
        for name in extra:
            del error.instance[name]
        return f"{where or 'payload'}: unknown properties {extra} ignored"
    return None


def check_call(action: str, payload: Any, *, lenient: bool = False) -> Checked:
    """Validate an incoming CALL payload; raise the 1.6 CallError, or repair vendor quirks when lenient."""
    validator = get_validator(2, action, "1.6")
    error = next(iter(validator.iter_errors(payload)), None)
    if error is None:
        return Checked(payload)
    if not lenient or not isinstance(payload, dict):
        raise to_ocpp_error(error, action)
    repaired = copy.deepcopy(payload)
    warnings: list[str] = []
    for _ in range(_MAX_REPAIRS):
        error = next(iter(validator.iter_errors(repaired)), None)
        if error is None:
            return Checked(repaired, warnings)
        warning = _repair(repaired, error)
        if warning is None:
            raise to_ocpp_error(error, action)
        warnings.append(warning)
    raise to_ocpp_error(error, action) if error is not None else AssertionError("unreachable")


def parse_datetime(value: Any, name: str = "timestamp") -> dt.datetime:
    """OCPP dateTime (RFC 3339); a naive value is taken as UTC. Invalid -> PropertyConstraintViolation."""
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise PropertyConstraintViolationError(details={"cause": f"{name}: not a date-time: {value!r}"}) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def format_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
