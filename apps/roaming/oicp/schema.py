"""OICP 2.3 bodies checked against Hubject's own OpenAPI files (`openapi/`, vendored unmodified).

Every body the platform sends to Hubject or receives from it, and every body the local Hubject
(`hub_sim.py`) receives, goes through `validate_request` / `validate_response` with the operation it belongs to
(the side, `"cpo"` or `"emp"`, whose file describes the partner's role, the HTTP method and the path after the
base URL). The checks are the files' JSON Schema (draft 4, which OpenAPI 3.0 schemas are a dialect of: `$ref`s,
`required`, `enum`, `pattern`, `oneOf`, numbers' `maximum`/`minimum`), date-time formats (RFC 3339 with an offset,
as the OICP "Time zones" chapter asks), and Hubject's string lengths: the files write the longest and shortest
string as `maximum` / `minimum` (`OperatorName: {type: string, maximum: 100}`), which JSON Schema ignores for
strings, so here they are checked as lengths.

A body that fails raises `OicpValidationError` with one `Issue` per problem, each with its JSON path
(`$.OperatorEvseData.EvseDataRecord[0].EvseID`) and a message; `str()` of the error lists them.

This module imports nothing of the platform (the local Hubject uses it) and no Django.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonschema import Draft4Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT4

Side = Literal["cpo", "emp"]
SIDES: tuple[Side, ...] = ("cpo", "emp")
SPEC_DIR = Path(__file__).resolve().parent / "openapi"
SPEC_FILES: dict[Side, Path] = {side: SPEC_DIR / f"oicp-2.3-{side}-openapi.bundled.yaml" for side in SIDES}
METHODS = ("get", "put", "post", "delete", "patch")


# --------------------------------------------------------------------------- loading the files


class _Loader(yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader):  # type: ignore[misc]
    """YAML 1.2 scalars: only true/false are booleans (YAML 1.1 also reads on/off/yes/no, and the key `on` of
    `OpeningTimes` would become True), and timestamps stay strings (an `example` date is a JSON string)."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(text: str) -> Any:
    """A YAML document read with YAML 1.2 scalars (see `_Loader`)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


@cache
def spec(side: Side) -> dict[str, Any]:
    """The OpenAPI document of one side, read once per process."""
    document = load_yaml(SPEC_FILES[side].read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _uri(side: Side) -> str:
    return f"urn:hubject:oicp-2.3:{side}"


@cache
def _registry() -> Registry[Any]:
    return Registry().with_resources((_uri(side), DRAFT4.create_resource(spec(side))) for side in SIDES)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


# --------------------------------------------------------------------------- the validator


def _length(kind: str, keyword: str) -> Any:
    standard = Draft4Validator.VALIDATORS[keyword]

    def check(validator: Any, limit: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
        if isinstance(instance, str):
            if schema.get("type", "string") == "string" and isinstance(limit, int | float):
                if kind == "max" and len(instance) > limit:
                    yield ValidationError(f"{instance!r} is longer than {int(limit)} characters")
                elif kind == "min" and len(instance) < limit:
                    yield ValidationError(f"{instance!r} is shorter than {int(limit)} characters")
            return
        yield from standard(validator, limit, instance, schema)

    return check


_FORMATS = FormatChecker(formats=())
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE)


@_FORMATS.checks("date-time")
def _is_date_time(value: object) -> bool:
    """RFC 3339 with a time zone designator (OICP "Time zones": `YYYY-MM-DDThh:mm:ssTZD`)."""
    if not isinstance(value, str):
        return True  # the type keyword reports it
    if not _DATE_TIME.match(value):
        return False
    try:
        dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


# Hubject's `oneOf` alternatives overlap: none forbids extra properties and the notifications share one `Type`
# enum, so a strict oneOf refuses Hubject's own examples ("valid under more than one"), and a bad EvseID list in a
# PullEvseStatusByID would pass as a plain PullEvseStatus that ignores it. The OICP prose tells the forms apart by
# a field; these choosers do the same, and the body is then checked against the chosen form only.
def _by_type(prefix: str) -> Any:
    def choose(instance: dict[str, Any], names: tuple[str, ...]) -> str | ValidationError:
        kind = instance.get("Type")
        if isinstance(kind, str) and f"{prefix}{kind}" in names:
            return f"{prefix}{kind}"
        if "Type" not in instance:
            return ValidationError("'Type' is a required property", validator="required", validator_value=["Type"])
        allowed = [name.removeprefix(prefix) for name in names]
        return ValidationError(f"{kind!r} is not one of {allowed}", path=["Type"], validator="enum", instance=kind)

    return choose


def _by_key(keys: dict[str, str], default: str) -> Any:
    def choose(instance: dict[str, Any], names: tuple[str, ...]) -> str | ValidationError:
        present = [key for key in keys if key in instance]
        if len(present) > 1:
            return ValidationError(f"{' and '.join(present)} exclude each other (one form of the request)")
        return keys[present[0]] if present else default

    return choose


_NOTIFICATIONS = ("Start", "Progress", "End", "Error")
_ONE_OF_CHOICE: dict[frozenset[str], Any] = {
    frozenset(f"eRoamingChargingNotification{kind}" for kind in _NOTIFICATIONS): _by_type(
        "eRoamingChargingNotification"
    ),
    frozenset(("eRoamingPullEVSEStatus", "eRoamingPullEVSEStatusByID", "eRoamingPullEVSEStatusByOperatorID")): _by_key(
        {"EvseID": "eRoamingPullEVSEStatusByID", "OperatorID": "eRoamingPullEVSEStatusByOperatorID"},
        "eRoamingPullEVSEStatus",
    ),
    frozenset(("eRoamingEVSEStatus", "eRoamingEVSEStatusByID")): _by_key(
        {"EVSEStatusRecords": "eRoamingEVSEStatusByID", "EvseStatuses": "eRoamingEVSEStatus"}, "eRoamingEVSEStatus"
    ),
}


def _one_of(validator: Any, branches: list[Any], instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    names = tuple(str(branch.get("$ref", "")).rsplit("/", 1)[-1] for branch in branches)
    choose = _ONE_OF_CHOICE.get(frozenset(names))
    if choose is None or not validator.is_type(instance, "object"):
        yield from Draft4Validator.VALIDATORS["oneOf"](validator, branches, instance, schema)
        return
    picked = choose(instance, names)
    if isinstance(picked, ValidationError):
        yield picked
        return
    index = names.index(picked)
    yield from validator.descend(instance, branches[index], schema_path=index)


OicpValidator = validators.extend(
    Draft4Validator,
    {"maximum": _length("max", "maximum"), "minimum": _length("min", "minimum"), "oneOf": _one_of},
)


@cache
def _validator(side: Side, pointer: str) -> Any:
    """A validator for the schema at `pointer` (JSON pointer into the side's document)."""
    return OicpValidator({"$ref": f"{_uri(side)}#{pointer}"}, registry=_registry(), format_checker=_FORMATS)


@dataclass(frozen=True)
class Issue:
    path: str  # JSON path in the body, "$" for the body itself
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class OicpValidationError(ValueError):
    """A body does not match its operation's schema in Hubject's OpenAPI files."""

    def __init__(self, what: str, issues: list[Issue]) -> None:
        self.what = what
        self.issues = issues
        super().__init__(f"{what}: " + "; ".join(str(issue) for issue in issues))


def _message(error: ValidationError) -> str:
    if error.validator == "format" and error.validator_value == "date-time":
        return f"{error.instance!r} is not a date-time with a time zone (YYYY-MM-DDThh:mm:ss+hh:mm)"
    if error.validator == "oneOf" and "is valid under each of" in error.message:
        return "matches more than one of the allowed forms"
    return error.message


def issues(side: Side, pointer: str, body: Any) -> list[Issue]:
    """Every problem of `body` against the schema at `pointer`, in path order; [] when it is valid.

    A body that fits none of a `oneOf`'s forms is reported by the problems of the form it comes closest to
    (jsonschema's `best_match`), so the path points into the body, not at its root."""
    found: dict[tuple[str, str], Issue] = {}
    for error in _validator(side, pointer).iter_errors(body):
        deepest = best_match([error]) or error
        issue = Issue(deepest.json_path, _message(deepest))
        found.setdefault((issue.path, issue.message), issue)
    return sorted(found.values(), key=lambda issue: issue.path)


# --------------------------------------------------------------------------- operations


class UnknownOperation(LookupError):
    """No operation of the side's file has this method and path."""


@dataclass(frozen=True)
class Operation:
    side: Side
    method: str  # upper case
    path: str  # the template, e.g. /evsepush/v23/operators/{operatorID}/data-records
    operation_id: str
    request_pointer: str | None
    response_pointer: str | None
    pattern: re.Pattern[str]

    @property
    def name(self) -> str:
        """Hubject's name without the version: eRoamingPushEvseData_V2.3 -> PushEvseData."""
        return self.operation_id.split("_", 1)[0].removeprefix("eRoaming")

    def parameters(self, path: str) -> dict[str, str]:
        match = self.pattern.match(path)
        return match.groupdict() if match else {}

    def request_issues(self, body: Any) -> list[Issue]:
        return issues(self.side, self.request_pointer, body) if self.request_pointer else []

    def response_issues(self, body: Any) -> list[Issue]:
        return issues(self.side, self.response_pointer, body) if self.response_pointer else []

    def validate_request(self, body: Any) -> None:
        if found := self.request_issues(body):
            raise OicpValidationError(f"{self.operation_id} request", found)

    def validate_response(self, body: Any) -> None:
        if found := self.response_issues(body):
            raise OicpValidationError(f"{self.operation_id} response", found)


def _json_schema_pointer(base: str, media: dict[str, Any]) -> str | None:
    content = media.get("content") or {}
    if "application/json" not in content or "schema" not in content["application/json"]:
        return None
    return f"{base}/content/application~1json/schema"


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)" for index, part in enumerate(parts))
    return re.compile(f"^{regex}/?$")


@cache
def operations(side: Side) -> tuple[Operation, ...]:
    """The operations of one side's file (method + path template -> request and 200 response schemas)."""
    found = []
    document = spec(side)
    for template, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            base = f"/paths/{_escape(template)}/{method}"
            request = operation.get("requestBody") or {}
            response = (operation.get("responses") or {}).get("200") or {}
            response_base = f"{base}/responses/200"
            if "$ref" in response:  # a shared response (components/responses/...)
                response_base = response["$ref"].removeprefix("#")
                response = document["components"]["responses"][response_base.rsplit("/", 1)[-1]]
            found.append(
                Operation(
                    side=side,
                    method=method.upper(),
                    path=template,
                    operation_id=operation["operationId"],
                    request_pointer=_json_schema_pointer(f"{base}/requestBody", request),
                    response_pointer=_json_schema_pointer(response_base, response),
                    pattern=_pattern(template),
                )
            )
    return tuple(found)


def operation(side: Side, method: str, path: str) -> Operation:
    """The operation a request is for: `path` is the part after the base URL (`/api/oicp`), with its ids."""
    for candidate in operations(side):
        if candidate.method == method.upper() and candidate.pattern.match(path):
            return candidate
    raise UnknownOperation(f"OICP 2.3 {side.upper()} has no operation {method.upper()} {path}")


def operation_named(side: Side, name: str) -> Operation:
    """An operation by Hubject's name without version (`PushEvseData`) or its full operationId."""
    for candidate in operations(side):
        if name in (candidate.name, candidate.operation_id):
            return candidate
    raise UnknownOperation(f"OICP 2.3 {side.upper()} has no operation {name}")


def validate_request(side: Side, method: str, path: str, body: Any) -> Operation:
    """Raise `OicpValidationError` unless `body` is a valid request body of the operation; return the operation."""
    found = operation(side, method, path)
    found.validate_request(body)
    return found


def validate_response(side: Side, method: str, path: str, body: Any) -> Operation:
    """Raise `OicpValidationError` unless `body` is a valid 200 response body of the operation."""
    found = operation(side, method, path)
    found.validate_response(body)
    return found


def schema_issues(side: Side, name: str, body: Any) -> list[Issue]:
    """Problems of `body` against a named schema of `components/schemas` (e.g. "EvseDataRecord")."""
    return issues(side, f"/components/schemas/{_escape(name)}", body)
