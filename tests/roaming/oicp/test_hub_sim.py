"""The local Hubject over real HTTPS with mutual TLS: certificates, validation, EVSE data and status, and the routing of
authorizations and CDRs between a CPO and an EMP (their endpoints are PartnerEndpoint servers with the test CA's
certificates, which require the hub's client certificate)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from apps.roaming.oicp import schema
from apps.roaming.oicp.hub_sim import HubSimulator, LocalCA, PartnerEndpoint
from tests.roaming.oicp.conftest import OPERATOR_ID, PROVIDER_ID, Client, evse_record, example, push_evse_data

PUSH_DATA = f"/evsepush/v23/operators/{OPERATOR_ID}/data-records"
PUSH_STATUS = f"/evsepush/v21/operators/{OPERATOR_ID}/status-records"
PULL_DATA = f"/evsepull/v23/providers/{PROVIDER_ID}/data-records"
PULL_STATUS = f"/evsepull/v21/providers/{PROVIDER_ID}/status-records"
AUTHORIZE_START = f"/charging/v21/operators/{OPERATOR_ID}/authorize/start"
AUTHORIZE_STOP = f"/charging/v21/operators/{OPERATOR_ID}/authorize/stop"
REMOTE_START = f"/charging/v21/providers/{PROVIDER_ID}/authorize-remote/start"
REMOTE_STOP = f"/charging/v21/providers/{PROVIDER_ID}/authorize-remote/stop"
CDR = f"/cdrmgmt/v22/operators/{OPERATOR_ID}/charge-detail-record"
GET_CDRS = f"/cdrmgmt/v22/providers/{PROVIDER_ID}/get-charge-detail-records-request"
AUTH_DATA = f"/authdata/v21/providers/{PROVIDER_ID}/push-request"
EVCO = "DE-DCB-C12345678-X"


def _ok(response: requests.Response, side: schema.Side, path: str) -> dict[str, Any]:
    """A 200 whose body is valid for the operation, as the partner reads it."""
    assert response.status_code == 200, response.text
    body = response.json()
    schema.validate_response(side, "POST", path, body)
    return body  # type: ignore[no-any-return]


def _pull(emp: Client, query: str = "", **filters: Any) -> dict[str, Any]:
    body = {"ProviderID": PROVIDER_ID, "GeoCoordinatesResponseFormat": "DecimalDegree", **filters}
    return _ok(emp.post(PULL_DATA + query, body), "emp", PULL_DATA)


def _wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.02)


# --------------------------------------------------------------------------- mutual TLS


def test_a_client_without_a_certificate_is_refused_at_tls_level(hub: HubSimulator, cpo: Client) -> None:
    anonymous = Client(hub, None, cpo.ca_file)
    with pytest.raises(requests.exceptions.ConnectionError):  # SSLError is one
        anonymous.post(PUSH_DATA, push_evse_data("fullLoad", evse_record("DE*ABC*E1001")))
    _wait_for(lambda: len(hub.refused) == 1)
    assert "CERTIFICATE" in hub.refused[0].upper()
    assert hub.received == []
    assert hub.evses == {}


def test_a_client_certificate_of_another_ca_is_refused(hub: HubSimulator, cpo: Client, tmp_path: Path) -> None:
    intruder = LocalCA(tmp_path / "other", name="Somebody else's CA").issue("cpo.voltnet")  # same name, wrong issuer
    with pytest.raises(requests.exceptions.ConnectionError):
        Client(hub, intruder, cpo.ca_file).post(PUSH_DATA, push_evse_data("fullLoad", evse_record("DE*ABC*E1001")))
    _wait_for(lambda: len(hub.refused) == 1)
    assert hub.received == []


def test_an_operator_id_that_is_not_the_certificates_gets_017(hub: HubSimulator, cpo: Client, emp: Client) -> None:
    other = "/evsepush/v23/operators/DE*XYZ/data-records"
    response = cpo.post(other, push_evse_data("fullLoad", evse_record("DE*XYZ*E1"), operator_id="DE*XYZ"))
    assert (response.status_code, response.json()["StatusCode"]["Code"], response.json()["Result"]) == (
        403,
        "017",
        False,
    )
    # an EMP's certificate cannot push EVSE data either
    response = emp.post(PUSH_DATA, push_evse_data("fullLoad", evse_record("DE*ABC*E1")))
    assert (response.status_code, response.json()["StatusCode"]["Code"]) == (403, "017")
    assert hub.evses == {}


# --------------------------------------------------------------------------- validation


def test_an_invalid_body_gets_the_oicp_error_answer_and_changes_nothing(hub: HubSimulator, cpo: Client) -> None:
    _ok(cpo.post(PUSH_DATA, push_evse_data("fullLoad", evse_record("DE*ABC*E1001"))), "cpo", PUSH_DATA)
    before = dict(hub.evses)

    bad = push_evse_data("fullLoad", evse_record("DE*ABC*E1002", HardwareManufacturer="x" * 51))
    bad["ActionType"] = "replace"
    response = cpo.post(PUSH_DATA, bad)

    assert response.status_code == 400
    answer = response.json()
    schema.validate_response("cpo", "POST", PUSH_DATA, answer)  # the error answer is itself valid OICP
    assert answer["Result"] is False
    assert answer["StatusCode"]["Code"] == "022"
    assert answer["StatusCode"]["Description"] == "Data error."
    assert "$.ActionType: 'replace' is not one of" in answer["StatusCode"]["AdditionalInfo"]
    assert "$.OperatorEvseData.EvseDataRecord[0].HardwareManufacturer: " in answer["StatusCode"]["AdditionalInfo"]
    assert "is longer than 50 characters" in answer["StatusCode"]["AdditionalInfo"]
    assert hub.evses == before


@pytest.mark.parametrize(
    ("raw", "info"),
    [(b"{not json", "body is not JSON"), (b"\xff\xfe", "body is not JSON"), (b"[]", "is not of type 'object'")],
)
def test_malformed_bodies_get_022(hub: HubSimulator, cpo: Client, raw: bytes, info: str) -> None:
    response = cpo.post(PUSH_DATA, None, data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["StatusCode"]["Code"] == "022"
    assert info in response.json()["StatusCode"]["AdditionalInfo"]


def test_an_unknown_path_gets_an_answer_not_a_crash(hub: HubSimulator, cpo: Client) -> None:
    response = cpo.post("/evsepush/v99/operators/DE*ABC/data-records", {})
    assert (response.status_code, response.json()["StatusCode"]["Code"]) == (404, "320")


# --------------------------------------------------------------------------- EVSE data


def test_full_load_then_deltas_then_pull_sees_them(hub: HubSimulator, cpo: Client, emp: Client) -> None:
    first = [evse_record(f"DE*ABC*E100{n}") for n in (1, 2, 3)]
    _ok(cpo.post(PUSH_DATA, push_evse_data("fullLoad", *first)), "cpo", PUSH_DATA)

    pulled = _pull(emp)
    assert [record["EvseID"] for record in pulled["content"]] == ["DE*ABC*E1001", "DE*ABC*E1002", "DE*ABC*E1003"]
    assert pulled["content"][0]["OperatorID"] == OPERATOR_ID
    assert pulled["content"][0]["ChargingStationId"] == "TEST 1"  # the EMP file's spelling of the CPO's ...ID
    assert pulled["content"][0]["GeoCoordinates"] == {
        "DecimalDegree": {"Latitude": "52.480495", "Longitude": "13.356465"}
    }
    assert "deltaType" not in pulled["content"][0]
    last_call = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.01)

    _ok(cpo.post(PUSH_DATA, push_evse_data("insert", evse_record("DE*ABC*E1004"))), "cpo", PUSH_DATA)
    _ok(cpo.post(PUSH_DATA, push_evse_data("update", evse_record("DE*ABC*E1002", MaxCapacity=2))), "cpo", PUSH_DATA)
    _ok(cpo.post(PUSH_DATA, push_evse_data("delete", evse_record("DE*ABC*E1003"))), "cpo", PUSH_DATA)

    full = _pull(emp)
    assert [(r["EvseID"], r.get("MaxCapacity")) for r in full["content"]] == [
        ("DE*ABC*E1001", 50),
        ("DE*ABC*E1002", 2),
        ("DE*ABC*E1004", 50),
    ]
    delta = _pull(emp, LastCall=last_call)
    assert [(r["EvseID"], r["deltaType"]) for r in delta["content"]] == [
        ("DE*ABC*E1002", "update"),
        ("DE*ABC*E1003", "delete"),
        ("DE*ABC*E1004", "insert"),
    ]

    # a new full load replaces the operator's records: E1001 and E1004 disappear
    _ok(cpo.post(PUSH_DATA, push_evse_data("fullLoad", evse_record("DE*ABC*E1002"))), "cpo", PUSH_DATA)
    assert [r["EvseID"] for r in _pull(emp)["content"]] == ["DE*ABC*E1002"]


def test_pull_is_paged(hub: HubSimulator, cpo: Client, emp: Client) -> None:
    records = [evse_record(f"DE*ABC*E20{n:02d}") for n in range(25)]
    _ok(cpo.post(PUSH_DATA, push_evse_data("fullLoad", *records)), "cpo", PUSH_DATA)

    default = _pull(emp)
    assert (len(default["content"]), default["size"], default["totalElements"], default["totalPages"]) == (
        20,
        20,
        25,
        2,
    )
    assert (default["first"], default["last"]) == (True, False)
    second = _pull(emp, "?page=1&size=20")
    assert [r["EvseID"] for r in second["content"]] == [f"DE*ABC*E20{n:02d}" for n in range(20, 25)]
    assert (second["number"], second["numberOfElements"], second["last"]) == (1, 5, True)
    bad = emp.post(PULL_DATA + "?size=0", {"ProviderID": PROVIDER_ID, "GeoCoordinatesResponseFormat": "Google"})
    assert (bad.status_code, bad.json()["StatusCode"]["Code"]) == (400, "022")


@pytest.mark.parametrize(
    ("action", "evse_id", "code"),
    [
        ("insert", "DE*ABC*E1001", "009"),  # exists already
        ("update", "DE*ABC*E9999", "009"),  # unknown
        ("delete", "DE*ABC*E9999", "009"),
        ("insert", "DE*XYZ*E1", "018"),  # another operator's EVSE
    ],
)
def test_refused_deltas_change_nothing(hub: HubSimulator, cpo: Client, action: str, evse_id: str, code: str) -> None:
    _ok(cpo.post(PUSH_DATA, push_evse_data("fullLoad", evse_record("DE*ABC*E1001"))), "cpo", PUSH_DATA)
    before = {key: (stored.record, stored.updated, stored.deleted) for key, stored in hub.evses.items()}

    answer = _ok(cpo.post(PUSH_DATA, push_evse_data(action, evse_record(evse_id, MaxCapacity=7))), "cpo", PUSH_DATA)

    assert (answer["Result"], answer["StatusCode"]["Code"]) == (False, code)
    assert {key: (stored.record, stored.updated, stored.deleted) for key, stored in hub.evses.items()} == before


def test_evse_status_push_and_pulls(hub: HubSimulator, cpo: Client, emp: Client) -> None:
    def push(action: str, *pairs: tuple[str, str]) -> None:
        body = {
            "ActionType": action,
            "OperatorEvseStatus": {
                "OperatorID": OPERATOR_ID,
                "EvseStatusRecord": [{"EvseID": evse, "EvseStatus": status} for evse, status in pairs],
            },
        }
        _ok(cpo.post(PUSH_STATUS, body), "cpo", PUSH_STATUS)

    push("fullLoad", ("DE*ABC*E1001", "Available"), ("DE*ABC*E1002", "Available"))
    push("update", ("DE*ABC*E1002", "Occupied"))

    by_id = _ok(
        emp.post(PULL_STATUS, {"ProviderID": PROVIDER_ID, "EvseID": ["DE*ABC*E1002", "DE*ABC*E7"]}), "emp", PULL_STATUS
    )
    assert by_id["EVSEStatusRecords"]["EvseStatusRecord"] == [
        {"EvseID": "DE*ABC*E1002", "EvseStatus": "Occupied"},
        {"EvseID": "DE*ABC*E7", "EvseStatus": "EvseNotFound"},
    ]
    by_operator = _ok(
        emp.post(PULL_STATUS, {"ProviderID": PROVIDER_ID, "OperatorID": [OPERATOR_ID]}), "emp", PULL_STATUS
    )
    assert by_operator["EvseStatuses"]["OperatorEvseStatus"] == [
        {
            "OperatorID": OPERATOR_ID,
            "EvseStatusRecord": [
                {"EvseID": "DE*ABC*E1001", "EvseStatus": "Available"},
                {"EvseID": "DE*ABC*E1002", "EvseStatus": "Occupied"},
            ],
        }
    ]
    push("fullLoad", ("DE*ABC*E1001", "OutOfService"))
    everything = _ok(emp.post(PULL_STATUS, {"ProviderID": PROVIDER_ID}), "emp", PULL_STATUS)
    assert everything["EvseStatuses"]["OperatorEvseStatus"][0]["EvseStatusRecord"] == [
        {"EvseID": "DE*ABC*E1001", "EvseStatus": "OutOfService"}
    ]


# --------------------------------------------------------------------------- routing between a CPO and an EMP


@pytest.fixture
def endpoints(hub: HubSimulator, pki: LocalCA) -> Iterator[tuple[PartnerEndpoint, PartnerEndpoint]]:
    """The CPO's and the EMP's own OICP endpoints, requiring the hub's client certificate."""
    cpo_end = PartnerEndpoint(pki.issue("127.0.0.1", server=True), ca_file=pki.ca_file).start()
    emp_end = PartnerEndpoint(pki.issue("127.0.0.1", server=True), ca_file=pki.ca_file).start()
    hub.parties["cpo.voltnet"].endpoint = cpo_end.url
    hub.parties["emp.fjord"].endpoint = emp_end.url
    yield cpo_end, emp_end
    cpo_end.stop()
    emp_end.stop()


def _authorize_start(identification: dict[str, Any]) -> dict[str, Any]:
    return {
        "OperatorID": OPERATOR_ID,
        "EvseID": "DE*ABC*E1001",
        "Identification": identification,
        "CPOPartnerSessionID": "our-tx-42",
    }


def test_authorize_start_goes_to_the_emp_the_evco_id_names_and_the_cdr_follows(
    hub: HubSimulator, cpo: Client, emp: Client, endpoints: tuple[PartnerEndpoint, PartnerEndpoint]
) -> None:
    _, emp_end = endpoints
    emp_end.routes[AUTHORIZE_START] = lambda path, body: (
        200,
        {
            "SessionID": body["SessionID"],
            "ProviderID": PROVIDER_ID,
            "EMPPartnerSessionID": "emp-77",
            "AuthorizationStatus": "Authorized",
            "StatusCode": {"Code": "000"},
        },
    )
    emp_end.routes[CDR] = lambda path, body: (200, {"Result": True, "StatusCode": {"Code": "000"}})

    answer = _ok(
        cpo.post(AUTHORIZE_START, _authorize_start({"RemoteIdentification": {"EvcoID": EVCO}})), "cpo", AUTHORIZE_START
    )

    assert (answer["AuthorizationStatus"], answer["ProviderID"], answer["EMPPartnerSessionID"]) == (
        "Authorized",
        PROVIDER_ID,
        "emp-77",
    )
    assert answer["CPOPartnerSessionID"] == "our-tx-42"
    session_id = answer["SessionID"]
    assert emp_end.received[0][1]["SessionID"] == session_id  # the hub assigned it and told the EMP

    cdr = example("cpo", "eRoamingChargeDetailRecord")
    cdr.update(SessionID=session_id, EvseID="DE*ABC*E1001", CPOPartnerSessionID="our-tx-42")
    ack = _ok(cpo.post(CDR, cdr), "cpo", CDR)
    assert (ack["Result"], ack["SessionID"]) == (True, session_id)
    forwarded = emp_end.received[-1]
    assert forwarded[0] == CDR
    assert forwarded[1]["HubProviderId"] == "DE-DCB"  # the EMP file's spelling
    assert hub.cdrs[0].forwarded is True

    window = {"From": "2020-01-01T00:00:00Z", "To": "2099-01-01T00:00:00Z"}
    kept = _ok(emp.post(GET_CDRS, {"ProviderID": PROVIDER_ID, **window}), "emp", GET_CDRS)
    assert [record["SessionID"] for record in kept["content"]] == [session_id]
    none = _ok(
        emp.post(GET_CDRS, {"ProviderID": PROVIDER_ID, **window, "SessionID": [str(uuid.uuid4())]}), "emp", GET_CDRS
    )
    assert none["content"] == []

    again = _ok(cpo.post(CDR, cdr), "cpo", CDR)  # the same session's CDR twice
    assert (again["Result"], again["StatusCode"]["Code"]) == (False, "009")
    assert len(hub.cdrs) == 1


def test_a_cdr_for_a_session_the_hub_never_opened_gets_400(hub: HubSimulator, cpo: Client) -> None:
    cdr = example("cpo", "eRoamingChargeDetailRecord")
    cdr.update(SessionID=str(uuid.uuid4()), EvseID="DE*ABC*E1001")
    answer = _ok(cpo.post(CDR, cdr), "cpo", CDR)
    assert (answer["Result"], answer["StatusCode"]["Code"]) == (False, "400")
    assert hub.cdrs == []


def test_authorize_start_from_push_authentication_data_needs_no_emp_call(
    hub: HubSimulator, cpo: Client, emp: Client, endpoints: tuple[PartnerEndpoint, PartnerEndpoint]
) -> None:
    _, emp_end = endpoints
    record = {"Identification": {"RFIDMifareFamilyIdentification": {"UID": "04A1B2C3D4E5F6"}}}
    body = {
        "ActionType": "fullLoad",
        "ProviderAuthenticationData": {"ProviderID": PROVIDER_ID, "AuthenticationDataRecord": [record]},
    }
    _ok(emp.post(AUTH_DATA, body), "emp", AUTH_DATA)

    answer = _ok(cpo.post(AUTHORIZE_START, _authorize_start(record["Identification"])), "cpo", AUTHORIZE_START)
    assert (answer["AuthorizationStatus"], answer["ProviderID"]) == ("Authorized", PROVIDER_ID)
    assert emp_end.received == []

    stop = {"SessionID": answer["SessionID"], "OperatorID": OPERATOR_ID, "Identification": record["Identification"]}
    stopped = _ok(cpo.post(AUTHORIZE_STOP, stop), "cpo", AUTHORIZE_STOP)
    assert stopped["AuthorizationStatus"] == "Authorized"

    body["ActionType"] = "delete"
    _ok(emp.post(AUTH_DATA, body), "emp", AUTH_DATA)
    emp_end.routes[AUTHORIZE_START] = lambda path, body: (
        200,
        {"AuthorizationStatus": "NotAuthorized", "StatusCode": {"Code": "102", "AdditionalInfo": "unknown card"}},
    )
    refused = _ok(cpo.post(AUTHORIZE_START, _authorize_start(record["Identification"])), "cpo", AUTHORIZE_START)
    assert (refused["AuthorizationStatus"], refused["StatusCode"]["Code"]) == ("NotAuthorized", "102")


def test_an_emp_that_answers_wrongly_or_not_at_all_is_not_an_authorization(
    hub: HubSimulator, cpo: Client, emp: Client, endpoints: tuple[PartnerEndpoint, PartnerEndpoint]
) -> None:
    _, emp_end = endpoints
    emp_end.routes[AUTHORIZE_START] = lambda path, body: (200, {"AuthorizationStatus": "Yes"})
    answer = _ok(
        cpo.post(AUTHORIZE_START, _authorize_start({"RemoteIdentification": {"EvcoID": EVCO}})), "cpo", AUTHORIZE_START
    )
    assert (answer["AuthorizationStatus"], answer["StatusCode"]["Code"]) == ("NotAuthorized", "022")

    hub.partner_timeout = 0.5
    emp_end.routes[AUTHORIZE_START] = lambda path, body: (time.sleep(2), (200, {}))[1]  # type: ignore[func-returns-value]
    answer = _ok(
        cpo.post(AUTHORIZE_START, _authorize_start({"RemoteIdentification": {"EvcoID": EVCO}})), "cpo", AUTHORIZE_START
    )
    assert (answer["AuthorizationStatus"], answer["StatusCode"]["Code"]) == ("NotAuthorized", "310")
    assert hub.sessions == {}


def test_remote_start_and_stop_go_from_the_emp_to_the_cpo_of_the_evse(
    hub: HubSimulator, cpo: Client, emp: Client, endpoints: tuple[PartnerEndpoint, PartnerEndpoint]
) -> None:
    cpo_end, _ = endpoints
    _ok(cpo.post(PUSH_DATA, push_evse_data("fullLoad", evse_record("DE*ABC*E1001"))), "cpo", PUSH_DATA)
    cpo_end.routes[REMOTE_START] = lambda path, body: (
        200,
        {"Result": True, "StatusCode": {"Code": "000"}, "SessionID": body["SessionID"], "CPOPartnerSessionID": "tx-9"},
    )
    cpo_end.routes[REMOTE_STOP] = lambda path, body: (
        200,
        {"Result": True, "StatusCode": {"Code": "000"}, "SessionID": body["SessionID"]},
    )
    session_id = str(uuid.uuid4())
    start = {
        "SessionID": session_id,
        "ProviderID": PROVIDER_ID,
        "EvseID": "DE*ABC*E1001",
        "Identification": {"RemoteIdentification": {"EvcoID": EVCO}},
        "EMPPartnerSessionID": "driver-app-1",
    }

    answer = _ok(emp.post(REMOTE_START, start), "emp", REMOTE_START)

    assert (answer["Result"], answer["SessionID"], answer["CPOPartnerSessionID"]) == (True, session_id, "tx-9")
    assert cpo_end.received == [(REMOTE_START, start)]
    assert hub.sessions[session_id].operator_id == OPERATOR_ID

    stop = {"SessionID": session_id, "ProviderID": PROVIDER_ID, "EvseID": "DE*ABC*E1001"}
    stopped = _ok(emp.post(REMOTE_STOP, stop), "emp", REMOTE_STOP)
    assert stopped["Result"] is True
    assert cpo_end.received[-1] == (REMOTE_STOP, stop)

    unknown = _ok(
        emp.post(REMOTE_START, {**start, "SessionID": str(uuid.uuid4()), "EvseID": "DE*ABC*E4040"}), "emp", REMOTE_START
    )
    assert (unknown["Result"], unknown["StatusCode"]["Code"]) == (False, "603")
    reused = _ok(emp.post(REMOTE_START, start), "emp", REMOTE_START)
    assert (reused["Result"], reused["StatusCode"]["Code"]) == (False, "400")
    assert len(cpo_end.received) == 2


def test_every_request_is_recorded(hub: HubSimulator, cpo: Client) -> None:
    cpo.post(PUSH_DATA, push_evse_data("fullLoad", evse_record("DE*ABC*E1001")))
    cpo.post(PUSH_DATA, {"ActionType": "fullLoad"})
    assert [(call.operation, call.party, call.status) for call in hub.received] == [
        ("PushEvseData", "cpo.voltnet", 200),
        ("PushEvseData", "cpo.voltnet", 400),
    ]
    assert hub.calls("PushEvseData")[0].body["OperatorEvseData"]["OperatorID"] == OPERATOR_ID
