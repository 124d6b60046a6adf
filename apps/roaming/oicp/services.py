"""Writes of the OICP (Hubject) connection: creating and changing a tenant's connection, and recording each call.

A connection is a roaming partner (`RoamingPartner`, protocol OICP) with its `OicpConnection`: partner stations,
tariffs, sessions and CDRs that come through Hubject point at that partner row like an OCPI partner's do.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from apps.core.errors import ApplicationError, Conflict
from apps.roaming.models import (
    OICP_BASE_URLS,
    OICP_OPERATION_SIDE,
    OicpConnection,
    OicpEnvironment,
    OicpOperationState,
    PartnerStatus,
    Protocol,
    RoamingPartner,
    Role,
)
from apps.roaming.oicp import credentials
from apps.tenants.models import Tenant

HUBJECT_PARTY = ("DE", "HBS")  # the partner row's OCPI columns: a pseudo-party, one Hubject connection per tenant
HUBJECT = f"{HUBJECT_PARTY[0]}*{HUBJECT_PARTY[1]}"  # ChargingSession.roaming_partner of sessions Hubject started


def _fields_error(field: str, message: str) -> ApplicationError:
    return ApplicationError(message, code="invalid", fields={field: [message]})


def _base_url(environment: str, base_url: str) -> str:
    if environment in OICP_BASE_URLS:
        return OICP_BASE_URLS[environment]  # type: ignore[index]
    if environment != OicpEnvironment.CUSTOM:
        raise _fields_error("environment", f"Unknown environment {environment!r}.")
    if not base_url.startswith(("https://", "http://")):
        raise _fields_error("base_url", "An http(s) URL is required for another Hubject.")
    return base_url.rstrip("/")


def _check_operations(operations: list[str], operator_id: str, provider_id: str) -> list[str]:
    unknown = [op for op in operations if op not in OICP_OPERATION_SIDE]
    if unknown:
        raise _fields_error("enabled_operations", f"Unknown OICP operations: {', '.join(unknown)}.")
    if not operator_id and any(OICP_OPERATION_SIDE[op] == "cpo" for op in operations):
        raise _fields_error("operator_id", "CPO operations are enabled: an OperatorID is required.")
    if not provider_id and any(OICP_OPERATION_SIDE[op] == "emp" for op in operations):
        raise _fields_error("provider_id", "EMP operations are enabled: a ProviderID is required.")
    return sorted(set(operations), key=list(OICP_OPERATION_SIDE).index)


def _set_credentials(connection: OicpConnection, certificate_pem: str, key_pem: str) -> None:
    try:
        checked = credentials.check(certificate_pem, key_pem)
    except credentials.CredentialsError as error:
        raise _fields_error("client_certificate", str(error)) from None
    connection.client_certificate = checked.certificate_pem
    connection.client_key_encrypted = credentials.encrypt(checked.key_pem)
    connection.certificate_subject = checked.subject
    connection.certificate_not_after = checked.not_after


def _set_server_ca(connection: OicpConnection, server_ca: str) -> None:
    try:
        connection.server_ca = credentials.check_ca(server_ca)
    except credentials.CredentialsError as error:
        raise _fields_error("server_ca", str(error)) from None


def _clean(connection: OicpConnection) -> None:
    try:
        connection.full_clean(exclude=["partner", "tenant", "client_key_encrypted"], validate_constraints=False)
    except Exception as error:  # noqa: BLE001 (Django's ValidationError, reported field by field)
        fields = getattr(error, "message_dict", {"non_field_errors": [str(error)]})
        first = next(iter(fields.items()))
        raise ApplicationError(f"{first[0]}: {first[1][0]}", code="invalid", fields=fields) from None


def _prepared(
    *,
    tenant: Tenant,
    certificate_pem: str,
    key_pem: str,
    environment: str,
    base_url: str,
    operator_id: str | None,
    provider_id: str | None,
    server_ca: str,
    enabled_operations: list[str] | None,
    enabled: bool,
    hotline_phone_number: str = "",
) -> OicpConnection:
    """An unsaved connection with every check done (fields named in the ApplicationError)."""
    operator_id = tenant.oicp_operator_id if operator_id is None else operator_id
    provider_id = tenant.oicp_provider_id if provider_id is None else provider_id
    if not operator_id and not provider_id:
        raise _fields_error("operator_id", "An OperatorID (CPO) or a ProviderID (EMP) is required.")
    if enabled_operations is None:
        enabled_operations = [
            op for op, side in OICP_OPERATION_SIDE.items() if (operator_id if side == "cpo" else provider_id)
        ]
    connection = OicpConnection(
        tenant=tenant,
        environment=environment,
        base_url=_base_url(environment, base_url),
        operator_id=operator_id,
        provider_id=provider_id,
        enabled=enabled,
        enabled_operations=_check_operations(enabled_operations, operator_id, provider_id),
        hotline_phone_number=hotline_phone_number,
    )
    _set_credentials(connection, certificate_pem, key_pem)
    _set_server_ca(connection, server_ca)
    _clean(connection)
    if OicpConnection.objects.filter(tenant=tenant).exists():
        raise Conflict("This tenant has a Hubject connection already.", fields={"tenant": ["One per tenant."]})
    return connection


def oicp_connection_validate(**kwargs: Any) -> None:
    """The checks of `oicp_connection_create` without saving (the admin form shows their errors by field)."""
    kwargs.pop("name", None)
    defaults = {"environment": OicpEnvironment.QA, "base_url": "", "operator_id": None, "provider_id": None}
    _prepared(**{**defaults, "server_ca": "", "enabled_operations": None, "enabled": True, **kwargs})


@transaction.atomic
def oicp_connection_create(
    *,
    tenant: Tenant,
    certificate_pem: str,
    key_pem: str,
    name: str = "Hubject",
    environment: str = OicpEnvironment.QA,
    base_url: str = "",
    operator_id: str | None = None,
    provider_id: str | None = None,
    server_ca: str = "",
    enabled_operations: list[str] | None = None,
    enabled: bool = True,
    hotline_phone_number: str = "",
) -> OicpConnection:
    """The tenant's Hubject connection and its partner row. OperatorID/ProviderID default to the tenant's OICP ids;
    operations default to those of the roles we have an id for."""
    connection = _prepared(
        tenant=tenant,
        certificate_pem=certificate_pem,
        key_pem=key_pem,
        environment=environment,
        base_url=base_url,
        operator_id=operator_id,
        provider_id=provider_id,
        server_ca=server_ca,
        enabled_operations=enabled_operations,
        enabled=enabled,
        hotline_phone_number=hotline_phone_number,
    )
    operator_id, provider_id = connection.operator_id, connection.provider_id
    our_country, our_party = (tenant.ocpi_country_code, tenant.ocpi_party_id)
    if not (our_country and our_party):
        own = (operator_id or provider_id).replace("*", "").replace("-", "").upper()
        our_country, our_party = own[:2], own[2:5]
    try:
        with transaction.atomic():
            partner = RoamingPartner.objects.create(
                tenant=tenant,
                name=name,
                protocol=Protocol.OICP,
                our_country_code=our_country,
                our_party_id=our_party,
                our_roles=[role for role, own_id in ((Role.CPO, operator_id), (Role.EMSP, provider_id)) if own_id],
                country_code=HUBJECT_PARTY[0],
                party_id=HUBJECT_PARTY[1],
                roles=[Role.HUB],
                enabled_modules=[],
                status=PartnerStatus.REGISTERED if enabled else PartnerStatus.SUSPENDED,
            )
    except IntegrityError:
        raise Conflict(
            "This tenant has a partner DE*HBS already (Hubject's row).", fields={"tenant": ["One per tenant."]}
        ) from None
    connection.partner = partner
    connection.save()
    return connection


EDITABLE = (
    "environment",
    "base_url",
    "operator_id",
    "provider_id",
    "server_ca",
    "enabled",
    "enabled_operations",
    "hotline_phone_number",
)


def _updated(
    connection: OicpConnection, certificate_pem: str, key_pem: str, fields: dict[str, Any]
) -> tuple[OicpConnection, str | None]:
    """The connection with the changes applied and checked, not saved; and the new partner name, if any."""
    unknown = set(fields) - set(EDITABLE) - {"name"}
    if unknown:
        raise ApplicationError(f"Not editable: {', '.join(sorted(unknown))}.", code="invalid")
    fields = dict(fields)
    name = fields.pop("name", None)
    server_ca = fields.pop("server_ca", None)
    for key, value in fields.items():
        setattr(connection, key, value)
    connection.base_url = _base_url(connection.environment, connection.base_url)
    connection.enabled_operations = _check_operations(
        list(connection.enabled_operations), connection.operator_id, connection.provider_id
    )
    if certificate_pem or key_pem:
        if not (certificate_pem and key_pem):
            raise _fields_error("client_key", "A new certificate needs its private key, and a new key its certificate.")
        _set_credentials(connection, certificate_pem, key_pem)
    if server_ca is not None:
        _set_server_ca(connection, server_ca)
    _clean(connection)
    return connection, name


def oicp_connection_update_validate(
    *, connection: OicpConnection, certificate_pem: str = "", key_pem: str = "", **fields: Any
) -> None:
    """The checks of `oicp_connection_update` without saving."""
    _updated(OicpConnection.objects.get(pk=connection.pk), certificate_pem, key_pem, fields)


@transaction.atomic
def oicp_connection_update(
    *, connection: OicpConnection, certificate_pem: str = "", key_pem: str = "", **fields: Any
) -> OicpConnection:
    """Change the connection; a new certificate needs its key too (both replace the stored ones)."""
    locked = OicpConnection.objects.select_for_update().select_related("partner").get(pk=connection.pk)
    connection, name = _updated(locked, certificate_pem, key_pem, fields)
    connection.save()
    partner = connection.partner
    partner.status = PartnerStatus.REGISTERED if connection.enabled else PartnerStatus.SUSPENDED
    if name:
        partner.name = name
    partner.save(update_fields=["status", "name", "updated_at"])
    return connection


def oicp_operation_record(
    *,
    connection: OicpConnection,
    operation: str,
    outcome: str,
    status_code: str = "",
    http_status: int | None = None,
    error: str = "",
    at: dt.datetime | None = None,
) -> OicpOperationState:
    """One call of `operation` happened: count it, keep its outcome; an error is kept until the next one."""
    at = at or dt.datetime.now(dt.UTC)
    with transaction.atomic():
        state, _created = OicpOperationState.objects.select_for_update().get_or_create(
            connection=connection, operation=operation
        )
        state.calls = F("calls") + 1
        state.last_call_at = at
        state.last_outcome = outcome
        state.last_status_code = status_code[:3]
        state.last_http_status = http_status
        fields = ["calls", "last_call_at", "last_outcome", "last_status_code", "last_http_status"]
        if outcome == OicpOperationState.Outcome.OK:
            state.last_ok_at = at
            fields.append("last_ok_at")
        else:
            state.last_error = error[:1000]
            state.last_error_at = at
            fields += ["last_error", "last_error_at"]
        state.save(update_fields=fields)
    state.refresh_from_db()
    return state
