"""PushAuthenticationData (OICP 2.3, the EMP file): our drivers' tokens at Hubject, so that a CPO's AuthorizeStart is
answered by Hubject from them ("offline" authorization: quicker, and it works while we are unreachable).

What Hubject holds is mirrored in `OicpAuthenticationState` (one row per token and connection, the record it last
acknowledged), as the EVSE data push does (`cpo_push.py`): the first sync, and the admin's "push all", is a
`fullLoad`; afterwards a change of tokens (`TokensChanged`, its token ids) sends only `insert`, `update` and `delete`,
`CHUNK` records a request. A daily sweep compares every token (a contract that ran out changes no row and publishes
no event). A refusal means our mirror is wrong: it is dropped and the next sync is a fullLoad.

A token is pushed when it is ours (`source` local, not a cached roaming one), its own status accepts it now (not
blocked, valid, not expired, its driver or customer active, its contract running: `token_status`), and Hubject can
know it by something: an RFID UID in OICP's form (8, 14 or 20 hex digits) as RFIDMifareFamilyIdentification, and the
contract id as RemoteIdentification when it is an EvcoID of our ProviderID (what QR and app starts name).

Measured on this 2-core machine against the local Hubject (20,000 tokens, 2.8 MB body, 2026-12-05): reading and
deciding them 1.5 s; a fullLoad 17.7 s, two thirds of it checking the body against the OpenAPI file (our client
before sending, the local Hubject on receipt: jsonschema resolves each record's `$ref`s); a full comparison that
finds nothing changed (the daily sweep) 2.4 s. A tenant with a million tokens takes minutes for a fullLoad, which is
why changes go as deltas."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.customers.authorization import AuthorizationStatus, token_status
from apps.customers.models import Token, TokenSource
from apps.roaming.models import OicpAuthenticationState, OicpConnection, OicpOperation
from apps.roaming.oicp.client import OicpCallFailed, OicpClient, OicpDisabled
from apps.roaming.oicp.cpo_push import CHUNK, SyncResult, normalized, refusal
from apps.roaming.oicp.schema import OicpValidationError

UID = re.compile(r"^([0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20})$")
EVCO_ID = re.compile(
    r"^(([A-Za-z]{2}\-?[A-Za-z0-9]{3}\-?C[A-Za-z0-9]{8}\-?[\d|A-Za-z])"
    r"|([A-Za-z]{2}[\*|\-]?[A-Za-z0-9]{3}[\*|\-]?[A-Za-z0-9]{6}[\*|\-]?[\d|X]))$"
)  # the EMP file's EvcoID pattern (ISO 15118-1 and DIN SPEC 91286)
READ_BATCH = 2000  # tokens read per query of a full comparison
# what `authentication_record` reads (token_status included); with whole rows reading took 22 % longer
READ_FIELDS = (
    "tenant_id", "uid", "contract_id", "source", "blocked", "valid", "expires_at",
    "driver__is_active", "driver__credit_blocked",
    "business_customer__is_active", "business_customer__credit_blocked",
    "business_contract__valid_from", "business_contract__valid_until",
)  # fmt: skip


def authentication_record(connection: OicpConnection, token: Token, at: Any) -> dict[str, Any] | None:
    """The AuthenticationDataRecord Hubject should hold for this token now, or None (not to be known there)."""
    if token.source != TokenSource.LOCAL or token.tenant_id != connection.tenant_id:
        return None
    status, _reason = token_status(token=token, at=at)
    if status != AuthorizationStatus.ACCEPTED:
        return None
    identification: dict[str, Any] = {}
    uid = token.uid.upper()
    if UID.match(uid):
        identification["RFIDMifareFamilyIdentification"] = {"UID": uid}
    evco = token.contract_id
    if evco and EVCO_ID.match(evco) and normalized(evco).startswith(normalized(connection.provider_id)):
        identification["RemoteIdentification"] = {"EvcoID": evco}
    return {"Identification": identification} if identification else None


def _tokens(connection: OicpConnection, token_ids: Iterable[int] | None) -> Iterable[Token]:
    tokens = (
        Token.objects.filter(tenant_id=connection.tenant_id, source=TokenSource.LOCAL)
        .select_related("driver", "business_customer", "business_contract")
        .only(*READ_FIELDS)
    )
    if token_ids is not None:
        tokens = tokens.filter(pk__in=list(token_ids))
    return tokens.order_by("pk").iterator(chunk_size=READ_BATCH)


def wanted(connection: OicpConnection, token_ids: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
    """token pk -> the record Hubject should hold (all the tenant's tokens, or these)."""
    now = timezone.now()
    records = {}
    for token in _tokens(connection, token_ids):
        record = authentication_record(connection, token, now)
        if record is not None:
            records[token.pk] = record
    return records


def _body(connection: OicpConnection, action: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ActionType": action,
        "ProviderAuthenticationData": {"ProviderID": connection.provider_id, "AuthenticationDataRecord": records},
    }


def pushing(connection: OicpConnection) -> bool:
    return (
        connection.enabled
        and bool(connection.provider_id)
        and OicpOperation.PUSH_AUTHENTICATION_DATA in connection.enabled_operations
    )


def connections_pushing(*, tenant_id: int | None = None) -> list[int]:
    """The Hubject connections (of this tenant, or all) that push our tokens."""
    connections = OicpConnection.objects.filter(
        enabled=True, enabled_operations__contains=[OicpOperation.PUSH_AUTHENTICATION_DATA]
    ).exclude(provider_id="")
    if tenant_id is not None:
        connections = connections.filter(tenant_id=tenant_id)
    return list(connections.order_by("pk").values_list("pk", flat=True))


def authentication_data_sync(
    *, connection_id: int, token_ids: list[int] | None = None, full: bool = False
) -> SyncResult:
    """Bring Hubject's copy of our tokens up to date: a fullLoad (asked, or nothing acknowledged yet), else the
    changes of these tokens (or, without ids, of all of them). Raises OicpCallFailed when Hubject cannot be reached
    (the task retries), once what was acknowledged before is stored; a refusal is returned in `refused`."""
    failure: Exception | None = None
    with transaction.atomic():
        connection = OicpConnection.objects.select_for_update().select_related("tenant").get(pk=connection_id)
        if not pushing(connection):
            return SyncResult()
        states = OicpAuthenticationState.objects.filter(connection=connection)
        client = OicpClient(connection)
        try:
            if full or not states.exists():
                result = _full_load(connection, client)
            else:
                if token_ids is not None:
                    states = states.filter(token_pk__in=token_ids)
                held = {state.token_pk: state.record for state in states}
                result = _deltas(connection, client, wanted(connection, token_ids), held)
        except (OicpCallFailed, OicpDisabled, OicpValidationError) as error:
            failure, result = error, SyncResult()
        finally:
            client.close()
    if failure is not None:
        raise failure
    return result


def _full_load(connection: OicpConnection, client: OicpClient) -> SyncResult:
    result = SyncResult(action="fullLoad")
    records = wanted(connection)
    answer = client.call(OicpOperation.PUSH_AUTHENTICATION_DATA, _body(connection, "fullLoad", list(records.values())))
    if refused := refusal(answer):
        result.refused = refused
        return result
    now = timezone.now()
    OicpAuthenticationState.objects.filter(connection=connection).delete()
    OicpAuthenticationState.objects.bulk_create(
        (OicpAuthenticationState(connection=connection, token_pk=pk, record=record, pushed_at=now) for pk, record in
         records.items()),
        batch_size=READ_BATCH,
    )  # fmt: skip
    result.inserted = len(records)
    return result


def _deltas(
    connection: OicpConnection,
    client: OicpClient,
    records: dict[int, dict[str, Any]],
    held: dict[int, dict[str, Any]],
) -> SyncResult:
    result = SyncResult(action="delta")
    inserts = [pk for pk in records if pk not in held]
    updates = [pk for pk, record in records.items() if pk in held and held[pk] != record]
    deletes = [pk for pk in held if pk not in records]
    now = timezone.now()
    for action, pks in (("delete", deletes), ("insert", inserts), ("update", updates)):
        for start in range(0, len(pks), CHUNK):
            chunk = pks[start : start + CHUNK]
            sent = [held[pk] if action == "delete" else records[pk] for pk in chunk]
            answer = client.call(OicpOperation.PUSH_AUTHENTICATION_DATA, _body(connection, action, sent))
            if refused := refusal(answer):  # our mirror is wrong (or the data is): a fullLoad next time
                OicpAuthenticationState.objects.filter(connection=connection).delete()
                result.refused = refused
                return result
            mirror = OicpAuthenticationState.objects.filter(connection=connection, token_pk__in=chunk)
            if action == "delete":
                mirror.delete()
                result.deleted += len(chunk)
                continue
            mirror.delete()
            OicpAuthenticationState.objects.bulk_create(
                OicpAuthenticationState(connection=connection, token_pk=pk, record=records[pk], pushed_at=now)
                for pk in chunk
            )
            if action == "insert":
                result.inserted += len(chunk)
            else:
                result.updated += len(chunk)
    return result
