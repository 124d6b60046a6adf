"""The credentials module's official examples (../shared/specs/ocpi-2.2.1/examples/credentials_example*.json) are
taken as they are by the Credentials parser our /credentials receiver uses (registration then calls the versions
URL they name, which these examples' example.com hosts cannot answer: tests/roaming/test_credentials.py does the
handshake end to end against the partner simulator)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.roaming.ocpi import negotiation, transport

EXAMPLES = Path("/work/shared/specs/ocpi-2.2.1/examples")
if not EXAMPLES.exists():
    EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "specs" / "ocpi-2.2.1" / "examples"
FILES = sorted(EXAMPLES.glob("credentials_example*.json"))


@pytest.mark.skipif(not FILES, reason="the OCPI spec examples are not on this machine")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_official_credentials_example_is_accepted_as_it_is(path: Path) -> None:
    body = json.loads(path.read_text())

    parsed = negotiation.parse_credentials(body)

    assert (parsed.token, parsed.url) == (body["token"], body["url"])
    assert [(r["role"], r["country_code"], r["party_id"]) for r in parsed.roles] == [
        (r["role"], r["country_code"].upper(), r["party_id"].upper()) for r in body["roles"]
    ]


def test_a_credentials_object_without_roles_is_refused_with_2001() -> None:
    with pytest.raises(transport.OcpiError) as refused:
        negotiation.parse_credentials({"token": "abc", "url": "https://x.example.com/versions", "roles": []})

    assert refused.value.status_code == transport.INVALID_PARAMETERS == 2001
