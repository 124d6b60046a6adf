"""OICP 2.3 validation against Hubject's OpenAPI files (apps/roaming/oicp/schema.py): Hubject's own examples pass,
and a too-long string, a wrong enum, a missing field, a bad id, a bad date each fail at the right JSON path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from apps.roaming.oicp import schema
from apps.roaming.oicp.schema import Issue, OicpValidationError, UnknownOperation

# ../shared beside the checkout (CI, /work/main) or the machine's /work/shared (worktrees sit one level deeper)
SHARED = next(
    (
        folder / "specs" / "oicp-2.3"
        for folder in (Path(__file__).resolve().parents[3].parent / "shared", Path("/work/shared"))
        if (folder / "specs" / "oicp-2.3").is_dir()
    ),
    Path("/nonexistent"),
)
PUSH_EVSE_DATA = "/evsepush/v23/operators/DE*ABC/data-records"


def _at(side: schema.Side, pointer: str) -> Any:
    node: Any = schema.spec(side)
    for token in pointer.strip("/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def _embedded_examples() -> list[tuple[schema.Side, str]]:
    """Every `example` in the files' schemas, by the JSON pointer of the schema that carries it."""
    found: list[tuple[schema.Side, str]] = []

    def walk(side: schema.Side, node: Any, pointer: str) -> None:
        if isinstance(node, dict):
            if "example" in node and ("type" in node or "properties" in node or "$ref" in node or "enum" in node):
                found.append((side, pointer))
            for key, value in node.items():
                if key not in ("example", "description"):
                    walk(side, value, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(side, value, f"{pointer}/{index}")

    for side in schema.SIDES:
        walk(side, schema.spec(side), "")
    return found


EXAMPLES = _embedded_examples()


def test_the_files_carry_examples_and_operations() -> None:
    assert len(EXAMPLES) == 116  # 51 in the CPO file, 65 in the EMP file
    assert {op.name for op in schema.operations("cpo")} >= {
        "PushEvseData",
        "PushEvseStatus",
        "AuthorizeStart",
        "AuthorizeStop",
        "ChargeDetailRecord",
        "ChargingNotifications",
        "PushPricingProductData",
        "PushEVSEPricing",
        "AuthorizeRemoteStart",
        "AuthorizeRemoteStop",
    }
    assert {op.name for op in schema.operations("emp")} >= {
        "PullEvseData",
        "PullEvseStatus",
        "AuthorizeRemoteStart",
        "AuthorizeRemoteStop",
        "PushAuthenticationData",
        "GetChargeDetailRecords",
        "AuthorizeStart",
        "ChargeDetailRecord",
    }


@pytest.mark.parametrize(("side", "pointer"), EXAMPLES, ids=[f"{side}:{pointer}" for side, pointer in EXAMPLES])
def test_every_embedded_example_validates_against_its_schema(side: schema.Side, pointer: str) -> None:
    assert schema.issues(side, pointer, _at(side, pointer)["example"]) == []


def _operation_examples() -> list[tuple[schema.Side, str, str, str]]:
    """(side, operationId, request|response, component) for every body schema whose component carries an example:
    the example through the operation itself (its oneOf included)."""
    cases = []
    for side in schema.SIDES:
        for op in schema.operations(side):
            for kind, pointer in (("request", op.request_pointer), ("response", op.response_pointer)):
                assert pointer is not None
                node = _at(side, pointer)
                for ref in [node] if "$ref" in node else node.get("oneOf", []):
                    name = ref["$ref"].rsplit("/", 1)[-1]
                    if "example" in schema.spec(side)["components"]["schemas"][name]:
                        cases.append((side, op.operation_id, kind, name))
    return cases


OPERATION_EXAMPLES = _operation_examples()


@pytest.mark.parametrize(("side", "operation_id", "kind", "component"), OPERATION_EXAMPLES)
def test_every_example_passes_through_its_operation(
    side: schema.Side, operation_id: str, kind: str, component: str
) -> None:
    """Hubject's oneOf forms overlap (a strict oneOf refuses the ByID and notification examples): each example
    must still pass as a body of its operation."""
    op = schema.operation_named(side, operation_id)
    example = schema.spec(side)["components"]["schemas"][component]["example"]
    if kind == "request":
        op.validate_request(example)
    else:
        op.validate_response(example)


def test_operation_examples_cover_every_operation_that_has_one() -> None:
    covered = {(side, op_id, kind) for side, op_id, kind, _ in OPERATION_EXAMPLES}
    missing = {
        (side, op.operation_id, kind)
        for side in schema.SIDES
        for op in schema.operations(side)
        for kind in ("request", "response")
        if (side, op.operation_id, kind) not in covered
    }
    # the two answers whose schemas carry no example in Hubject's files
    assert missing == {
        ("emp", "eRoamingPullEvseData_V2.3", "response"),
        ("emp", "eRoamingPullPricingProductData_V1.0", "response"),
    }
    assert len(OPERATION_EXAMPLES) == 59


def _push_evse_data() -> dict[str, Any]:
    return copy.deepcopy(schema.spec("cpo")["components"]["schemas"]["eRoamingPushEvseData"]["example"])


def _request_issues(body: Any, path: str = PUSH_EVSE_DATA, side: schema.Side = "cpo") -> list[Issue]:
    with pytest.raises(OicpValidationError) as raised:
        schema.validate_request(side, "POST", path, body)
    return raised.value.issues


def test_a_string_longer_than_hubjects_maximum_fails_at_its_path() -> None:
    body = _push_evse_data()
    body["OperatorEvseData"]["OperatorName"] = "x" * 101
    assert _request_issues(body) == [
        Issue("$.OperatorEvseData.OperatorName", f"{'x' * 101!r} is longer than 100 characters")
    ]
    body["OperatorEvseData"]["OperatorName"] = "x" * 100  # the limit itself is allowed
    schema.validate_request("cpo", "POST", PUSH_EVSE_DATA, body)


def test_a_string_shorter_than_hubjects_minimum_fails_and_numbers_keep_their_maximum() -> None:
    body = _push_evse_data()
    body["OperatorEvseData"]["EvseDataRecord"][0]["Address"]["Country"] = "DE"  # ISO 3166 alpha-3: exactly 3
    body["OperatorEvseData"]["EvseDataRecord"][0]["ChargingFacilities"][0]["Power"] = 1000  # maximum 999 (kW)
    assert _request_issues(body) == [
        Issue("$.OperatorEvseData.EvseDataRecord[0].Address.Country", "'DE' is shorter than 3 characters"),
        Issue(
            "$.OperatorEvseData.EvseDataRecord[0].ChargingFacilities[0].Power",
            "1000 is greater than the maximum of 999",
        ),
    ]


def test_a_wrong_enum_fails_at_its_path() -> None:
    body = _push_evse_data()
    body["ActionType"] = "fullload"
    body["OperatorEvseData"]["EvseDataRecord"][0]["OpeningTimes"][0]["on"] = "Holidays"
    assert [(issue.path, issue.message.split(" is not one of ")[0]) for issue in _request_issues(body)] == [
        ("$.ActionType", "'fullload'"),
        ("$.OperatorEvseData.EvseDataRecord[0].OpeningTimes[0].on", "'Holidays'"),
    ]


def test_a_missing_required_field_fails_at_its_parent() -> None:
    body = _push_evse_data()
    del body["OperatorEvseData"]["EvseDataRecord"][0]["EvseID"]
    del body["OperatorEvseData"]["OperatorID"]
    assert _request_issues(body) == [
        Issue("$.OperatorEvseData", "'OperatorID' is a required property"),
        Issue("$.OperatorEvseData.EvseDataRecord[0]", "'EvseID' is a required property"),
    ]


def test_ids_and_dates_are_checked() -> None:
    body = _push_evse_data()
    body["OperatorEvseData"]["EvseDataRecord"][0]["EvseID"] = "not an evse id"
    body["OperatorEvseData"]["EvseDataRecord"][0]["lastUpdate"] = "2018-01-23 14:04:29"  # no T, no zone
    found = _request_issues(body)
    assert [issue.path for issue in found] == [
        "$.OperatorEvseData.EvseDataRecord[0].EvseID",
        "$.OperatorEvseData.EvseDataRecord[0].lastUpdate",
    ]
    assert found[0].message.startswith("'not an evse id' does not match")
    assert found[1].message == "'2018-01-23 14:04:29' is not a date-time with a time zone (YYYY-MM-DDThh:mm:ss+hh:mm)"


def test_a_body_that_is_not_an_object_fails_at_the_root() -> None:
    assert _request_issues(["fullLoad"]) == [Issue("$", "['fullLoad'] is not of type 'object'")]


def test_the_one_of_forms_are_told_apart_by_their_fields() -> None:
    """PullEvseStatusByID's EvseID list is checked (a strict oneOf would accept it as a plain PullEvseStatus that
    ignores the list); a notification is checked as the form its Type names."""
    pull = "/evsepull/v21/providers/DE*DCB/status-records"
    assert _request_issues({"ProviderID": "DE*DCB", "EvseID": ["DE*XYZ*E1", "nope"]}, pull, "emp") == [
        Issue("$.EvseID[1]", _request_issues({"ProviderID": "DE*DCB", "EvseID": ["nope"]}, pull, "emp")[0].message)
    ]
    assert _request_issues(
        {"ProviderID": "DE*DCB", "EvseID": ["DE*XYZ*E1"], "OperatorID": ["DE*XYZ"]}, pull, "emp"
    ) == [Issue("$", "EvseID and OperatorID exclude each other (one form of the request)")]
    schema.validate_request("emp", "POST", pull, {"ProviderID": "DE*DCB", "OperatorID": ["DE*XYZ"]})

    notifications = "/notificationmgmt/v11/charging-notifications"
    end = copy.deepcopy(schema.spec("cpo")["components"]["schemas"]["eRoamingChargingNotificationEnd"]["example"])
    del end["ChargingEnd"]
    assert _request_issues(end, notifications) == [Issue("$", "'ChargingEnd' is a required property")]
    end["Type"] = "Finish"
    assert _request_issues(end, notifications) == [
        Issue("$.Type", "'Finish' is not one of ['Start', 'Progress', 'End', 'Error']")
    ]


def test_responses_are_validated_too() -> None:
    ack = {"Result": True, "StatusCode": {"Code": "000", "Description": "d" * 201}}
    with pytest.raises(OicpValidationError) as raised:
        schema.validate_response("cpo", "POST", PUSH_EVSE_DATA, ack)
    assert raised.value.issues == [Issue("$.StatusCode.Description", f"{'d' * 201!r} is longer than 200 characters")]
    assert str(raised.value).startswith("eRoamingPushEvseData_V2.3 response: $.StatusCode.Description: ")
    schema.validate_response("cpo", "POST", PUSH_EVSE_DATA, {"Result": True, "StatusCode": {"Code": "000"}})


def test_operations_are_found_by_method_and_path() -> None:
    op = schema.operation("cpo", "POST", PUSH_EVSE_DATA)
    assert (op.name, op.parameters(PUSH_EVSE_DATA)) == ("PushEvseData", {"operatorID": "DE*ABC"})
    assert schema.operation("emp", "post", "/evsepull/v23/providers/DE*DCB/data-records").name == "PullEvseData"
    with pytest.raises(UnknownOperation):
        schema.operation("cpo", "GET", PUSH_EVSE_DATA)
    with pytest.raises(UnknownOperation):
        schema.operation("cpo", "POST", "/evsepull/v23/providers/DE*DCB/data-records")  # an EMP operation
    with pytest.raises(UnknownOperation):
        schema.operation("cpo", "POST", "/evsepush/v23/operators/DE*ABC/data-records/extra")


def test_the_yaml_loader_keeps_on_and_dates_as_strings() -> None:
    assert schema.load_yaml("on: Everyday\noff: yes\nwhen: 2021-01-23T14:23:54Z\nok: true") == {
        "on": "Everyday",
        "off": "yes",
        "when": "2021-01-23T14:23:54Z",
        "ok": True,
    }
    opening = schema.spec("cpo")["components"]["schemas"]["OpeningTimes"]
    assert opening["required"] == ["Period", "on"]


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/specs/oicp-2.3 is not beside this checkout")
@pytest.mark.parametrize("side", schema.SIDES)
def test_the_vendored_files_equal_the_shared_specs(side: schema.Side) -> None:
    shared = SHARED / f"oicp-2.3-{side}-openapi.bundled.yaml"
    assert schema.SPEC_FILES[side].read_bytes() == shared.read_bytes()
