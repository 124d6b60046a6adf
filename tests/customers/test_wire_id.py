"""Long tokens: a uid longer than OCPP 1.6's 20-character idTag (OCPI allows 36) gets a stable short wire id,
computed by the database for every write path, unique per tenant and never another token's uid or wire id."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from apps.customers import selectors, services
from apps.customers.models import Token, TokenType, wire_id_for
from apps.stations import command_validation
from apps.tenants.models import Role, Tenant
from tests.customers.factories import TokenFactory

pytestmark = pytest.mark.django_db

UUID = "5f0c7d8e-3b1a-4c2e-9f6d-0a1b2c3d4e5f"  # an app token's uid: 36 characters


def test_a_uid_that_fits_is_its_own_wire_id_a_longer_one_gets_a_short_stable_one(tenant_a: Tenant) -> None:
    short = services.token_create(tenant=tenant_a, uid="04A1B2C3D4E5F6")
    long = services.token_create(tenant=tenant_a, uid=UUID, type=TokenType.APP_USER)
    long.refresh_from_db()
    short.refresh_from_db()

    assert short.wire_id == "04A1B2C3D4E5F6"
    assert long.wire_id == wire_id_for(UUID)  # the database and Python derive the same
    assert len(long.wire_id) == 20
    assert long.wire_id.startswith("X")
    assert long.wire_id.isalnum()
    assert long.wire_id.isupper()
    assert wire_id_for(UUID.upper()) == long.wire_id  # case-blind, like uids

    # stable: other changes keep it
    services.token_update(token=long, visual_number="APP-1", blocked=True)
    long.refresh_from_db()
    assert long.wire_id == wire_id_for(UUID)


def test_the_same_long_uid_in_two_tenants_is_fine(tenant_a: Tenant, tenant_b: Tenant) -> None:
    a = services.token_create(tenant=tenant_a, uid=UUID)
    b = services.token_create(tenant=tenant_b, uid=UUID)

    a.refresh_from_db()
    b.refresh_from_db()
    assert a.wire_id == b.wire_id == wire_id_for(UUID)


def test_a_uid_that_is_another_tokens_wire_id_is_refused_and_nothing_is_stored(
    tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    long = services.token_create(tenant=tenant_a, uid=UUID)
    long.refresh_from_db()
    before = list(Token.objects.order_by("pk").values_list("pk", "uid"))

    with pytest.raises(ValidationError) as refused:
        services.token_create(tenant=tenant_a, uid=long.wire_id.lower())
    by_api = client_for(tenant_a, Role.ADMIN).post("/api/v1/tokens/", {"uid": long.wire_id}, format="json")

    assert refused.value.message_dict == {
        "__all__": ["This uid is the OCPP idTag of another token (compared ignoring case)."]
    }
    assert by_api.status_code == 400
    assert by_api.json()["fields"] == {
        "non_field_errors": ["This uid is the OCPP idTag of another token (compared ignoring case)."]
    }
    assert list(Token.objects.order_by("pk").values_list("pk", "uid")) == before


def test_the_csv_import_reports_a_uid_that_is_another_tokens_wire_id(tenant_a: Tenant) -> None:
    long = services.token_create(tenant=tenant_a, uid=UUID)
    long.refresh_from_db()
    other_uuid = "0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b"
    csv = f"uid,type\n{long.wire_id},RFID\n{other_uuid},APP_USER\n{wire_id_for(other_uuid)},RFID\n"

    report = services.token_import_csv(tenant=tenant_a, file=io.BytesIO(csv.encode()))

    assert report.created == 1
    assert [(e.line, e.uid, e.reasons) for e in report.errors] == [
        (2, long.wire_id, (f"uid: its OCPP idTag {long.wire_id} is that of another token.",)),
        (
            4,
            wire_id_for(other_uuid),
            (f"uid: its OCPP idTag {wire_id_for(other_uuid)} is that of line 3 in this file.",),
        ),
    ]
    imported = Token.objects.get(tenant=tenant_a, uid=other_uuid)
    assert imported.wire_id == wire_id_for(other_uuid)


def test_authorization_finds_a_token_by_its_wire_id_or_its_uid(tenant_a: Tenant) -> None:
    long = TokenFactory(tenant=tenant_a, uid=UUID, type=TokenType.APP_USER)
    long.refresh_from_db()

    by_wire = services.token_authorize(tenant=tenant_a, id_tag=long.wire_id.lower())
    by_uid = services.token_authorize(tenant=tenant_a, id_tag=UUID)
    cut = services.token_authorize(tenant=tenant_a, id_tag=UUID[:20])  # what was sent before: unknown

    assert (by_wire.status, by_wire.token) == ("Accepted", long)
    assert (by_uid.status, by_uid.token) == ("Accepted", long)
    assert (cut.status, cut.token) == ("Invalid", None)


def test_the_local_auth_list_names_tokens_and_groups_by_their_wire_ids(tenant_a: Tenant) -> None:
    group = "fleet-group-0123456789-abcdefghijklm"  # a 36-character group id
    assert len(group) == 36
    TokenFactory(tenant=tenant_a, uid=UUID, group_id=group)
    TokenFactory(tenant=tenant_a, uid="04AA", group_id="SHORT")

    entries = selectors.local_auth_list(tenant=tenant_a)

    assert [(e.id_tag, e.status, e.parent_id_tag) for e in entries] == sorted(
        [("04AA", "Accepted", "SHORT"), (wire_id_for(UUID), "Accepted", wire_id_for(group))]
    )
    # and a SendLocalList of them is a valid OCPP 1.6 payload (idTag and parentIdTag: 20 characters at most)
    command_validation.check_command(
        action="SendLocalList",
        payload={
            "listVersion": 1,
            "updateType": "Full",
            "localAuthorizationList": [
                {"idTag": e.id_tag, "idTagInfo": {"status": e.status, "parentIdTag": e.parent_id_tag}} for e in entries
            ],
        },
    )
