"""Every example embedded in Hubject's two OpenAPI files of what Hubject sends us is taken (issue 16): the CPO file's
remote start/stop and reservation start/stop, the EMP file's AuthorizeStart/Stop, ChargeDetailRecord and the four
ChargingNotifications. Taken means: our validation passes (never 022), we answer in the file's own response shape,
and, as the examples name EVSEs, sessions and tokens we do not have, nothing is started, stored or billed."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from django.test import Client

from apps.roaming.models import PartnerReservation, RoamingCommand
from apps.roaming.oicp import schema
from apps.sessions.models import ChargingSession, PartnerCdr, PartnerSession

PROXY = {"HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS", "HTTP_X_SSL_CLIENT_S_DN": "CN=hubject-hbs,O=Hubject"}
RECEIVED: list[tuple[schema.Side, str]] = [
    ("cpo", "AuthorizeRemoteStart"),
    ("cpo", "AuthorizeRemoteStop"),
    ("cpo", "AuthorizeRemoteReservationStart"),
    ("cpo", "AuthorizeRemoteReservationStop"),
    ("emp", "AuthorizeStart"),
    ("emp", "AuthorizeStop"),
    ("emp", "ChargeDetailRecord"),
    ("emp", "ChargingNotifications"),
]


def _examples(side: schema.Side, name: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, body) of every example the file gives for the operation's request (each branch of a oneOf)."""
    spec = schema.spec(side)
    node: Any = spec
    for part in schema.operation_named(side, name).request_pointer.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/")]
    branches = node.get("oneOf") or [node]
    found = []
    for branch in branches:
        component = spec["components"]["schemas"][branch["$ref"].split("/")[-1]] if "$ref" in branch else branch
        if "example" in component:
            found.append((branch.get("$ref", name).split("/")[-1], copy.deepcopy(component["example"])))
    return found


CASES = [
    pytest.param(side, name, body, id=f"{side}-{label}")
    for side, name in RECEIVED
    for label, body in _examples(side, name)
]


def _path(side: schema.Side, name: str, body: dict[str, Any]) -> str:
    path = schema.operation_named(side, name).path
    operator = str(body.get("OperatorID") or "DE*XYZ")
    return "/oicp" + path.replace("{providerID}", str(body.get("ProviderID", ""))).replace("{operatorID}", operator)


def _counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (ChargingSession, RoamingCommand, PartnerReservation, PartnerSession, PartnerCdr)
    )


def test_every_operation_hubject_calls_on_us_has_examples() -> None:
    assert {name for _, name, _ in (c.values for c in CASES)} == {name for _, name in RECEIVED}
    assert len(CASES) >= 11  # the four notification types count apart


@pytest.mark.django_db
@pytest.mark.parametrize(("side", "name", "body"), CASES)
def test_hubjects_example_is_taken_and_changes_nothing(
    side: schema.Side, name: str, body: dict[str, Any], settings: Any
) -> None:
    settings.OICP_INBOUND_CLIENT_DN = "CN=hubject-hbs"
    operation = schema.operation_named(side, name)
    assert operation.request_issues(body) == [], "the example breaks its own file"
    before = _counts()

    response = Client().post(_path(side, name, body), json.dumps(body), content_type="application/json", **PROXY)

    assert response.status_code == 200, response.content
    answer = response.json()
    assert operation.response_issues(answer) == []
    assert answer["StatusCode"]["Code"] != "022", answer
    assert _counts() == before
