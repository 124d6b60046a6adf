"""Writes of the roaming partner registry: create, change, suspend, delete, tokens and handshake results."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone

from apps.core.deletion import DeletionProtected
from apps.core.errors import ApplicationError, Conflict
from apps.roaming.models import PartnerStatus, PullState, RoamingPartner, Role, TokenKind, token_hash
from apps.sessions import selectors as session_selectors
from apps.sessions.models import ChargingSession
from apps.tariffs.models import Tariff
from apps.tenants.models import Tenant

EDITABLE_FIELDS = (
    "name",
    "our_country_code",
    "our_party_id",
    "our_roles",
    "country_code",
    "party_id",
    "roles",
    "versions_url",
    "token_style",
    "their_token",
    "enabled_modules",
)


def new_credentials_token() -> str:
    """A credentials token: 43 printable non-whitespace ASCII characters (string(64) in credentials.asciidoc)."""
    return secrets.token_urlsafe(32)


def _set_our_token(partner: RoamingPartner, kind: str) -> str:
    raw = new_credentials_token()
    partner.our_token_hash = token_hash(raw)
    partner.our_token_hint = raw[:4]
    partner.our_token_kind = kind
    return raw


def _clean_and_save(partner: RoamingPartner, update_fields: Iterable[str] | None = None) -> None:
    partner.full_clean(validate_constraints=False)
    if (
        RoamingPartner.objects.filter(
            tenant_id=partner.tenant_id, country_code=partner.country_code, party_id=partner.party_id
        )
        .exclude(pk=partner.pk)
        .exists()
    ):
        message = f"This tenant already has a roaming partner {partner.party}."
        raise Conflict(message, fields={"party_id": [message]})
    if update_fields is None:
        partner.save()
    else:
        partner.save(update_fields=[*update_fields, "updated_at"])


def _set_tariffs(partner: RoamingPartner, tariffs: Iterable[Tariff]) -> None:
    """The tariffs this partner sees (none: the tenant's public ones). Only the partner's tenant's tariffs (a 400
    naming the field otherwise); each tariff it now sees or no longer sees is pushed (PUT) or taken back (DELETE)."""
    from apps.roaming import cpo_selectors
    from apps.roaming.ocpi import push

    chosen = list(tariffs)
    foreign = [t for t in chosen if t.tenant_id != partner.tenant_id]
    if foreign:
        raise ValidationError(
            {"tariffs": [f"Tariff {t.ocpi_id} belongs to another tenant." for t in sorted(foreign, key=lambda t: t.pk)]}
        )
    before = set(cpo_selectors.tariff_list(partner=partner).values_list("pk", flat=True))
    partner.tariffs.set(chosen)
    after = set(cpo_selectors.tariff_list(partner=partner).values_list("pk", flat=True))
    push.tariffs_changed(partner=partner, tariff_ids=sorted(before ^ after))


@transaction.atomic
def partner_create(*, tenant: Tenant, **fields: Any) -> tuple[RoamingPartner, str]:
    """A new partner, pending, with a fresh CREDENTIALS_TOKEN_A for them to register with us: the plain token is
    returned this once (give it to the partner out of band with our versions URL) and never stored."""
    tariffs = fields.pop("tariffs", None)
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}.")
    fields.setdefault("our_country_code", tenant.ocpi_country_code)
    fields.setdefault("our_party_id", tenant.ocpi_party_id)
    partner = RoamingPartner(tenant=tenant, **fields)
    if partner.their_token:
        partner.their_token_kind = TokenKind.A
    token_a = _set_our_token(partner, TokenKind.A)
    _clean_and_save(partner)
    if tariffs is not None:
        _set_tariffs(partner, tariffs)
    return partner, token_a


@transaction.atomic
def partner_update(*, partner: RoamingPartner, **fields: Any) -> RoamingPartner:
    partner = RoamingPartner.objects.select_for_update().get(pk=partner.pk)
    tariffs = fields.pop("tariffs", None)
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}.")
    if partner.status == PartnerStatus.REGISTERED:
        locked = [
            f for f in ("country_code", "party_id", "their_token") if f in fields and fields[f] != getattr(partner, f)
        ]
        if locked:
            raise Conflict(
                "A registered partner's party and tokens change through the credentials handshake (rotate or "
                "unregister first).",
                code="registered",
                fields={f: ["Cannot change while registered."] for f in locked},
            )
    for name, value in fields.items():
        setattr(partner, name, value)
    if "their_token" in fields and partner.status != PartnerStatus.REGISTERED:
        partner.their_token_kind = TokenKind.A if partner.their_token else ""
    _clean_and_save(partner)
    if tariffs is not None:
        _set_tariffs(partner, tariffs)
    return partner


@transaction.atomic
def partner_token_a_issue(*, partner: RoamingPartner) -> tuple[RoamingPartner, str]:
    """A new CREDENTIALS_TOKEN_A for a partner not registered (the previous one stops working)."""
    partner = RoamingPartner.objects.select_for_update().get(pk=partner.pk)
    if partner.status != PartnerStatus.PENDING:
        raise Conflict(
            f"Only a pending partner gets a registration token; this one is {partner.status}.", code="not_pending"
        )
    raw = _set_our_token(partner, TokenKind.A)
    partner.save(update_fields=["our_token_hash", "our_token_hint", "our_token_kind", "updated_at"])
    return partner, raw


@transaction.atomic
def partner_suspend(*, partner: RoamingPartner) -> RoamingPartner:
    """Stop all exchange with the partner: its tokens are refused (401) until it is reinstated."""
    partner = RoamingPartner.objects.select_for_update().get(pk=partner.pk)
    if partner.status != PartnerStatus.SUSPENDED:
        partner.status = PartnerStatus.SUSPENDED
        partner.save(update_fields=["status", "updated_at"])
    return partner


@transaction.atomic
def partner_reinstate(*, partner: RoamingPartner) -> RoamingPartner:
    """Undo a suspension: registered again when the tokens of a finished handshake are there, else pending."""
    partner = RoamingPartner.objects.select_for_update().get(pk=partner.pk)
    if partner.status == PartnerStatus.SUSPENDED:
        registered = partner.our_token_kind in (TokenKind.B, TokenKind.C) and partner.their_token_kind in (
            TokenKind.B,
            TokenKind.C,
        )
        partner.status = PartnerStatus.REGISTERED if registered else PartnerStatus.PENDING
        partner.save(update_fields=["status", "updated_at"])
        if registered:  # what changed while it was suspended was not sent: everything, once
            partner_full_sync(partner=partner)
    return partner


def partner_full_sync(*, partner: RoamingPartner) -> int:
    """Queue our current locations and the tariffs this partner sees for a push to it (OCPI Sender push of
    everything, through the ordinary push queue: coalesced with pending changes, sent in batches, resumed after a
    failure). After a registration, a reinstatement, or the admin's "full resync". Returns the objects queued."""
    from apps.roaming.ocpi import push

    if partner.status != PartnerStatus.REGISTERED:
        raise Conflict(
            f"The partner is {partner.status}: only a registered partner is sent our data.", code="not_registered"
        )
    return push.full_sync(partner=partner)


DELETE_INSTEAD = "suspend it instead (POST …/suspend/): the sessions keep their partner"


def partner_deletable(*, partner: RoamingPartner) -> None:
    """Raise `DeletionProtected` (409 `protected`) when sessions point to the partner (by party, "DE*ABC")."""
    count = session_selectors.session_count_for_roaming_partner(tenant_id=partner.tenant_id, party=partner.party)
    if count:
        raise DeletionProtected(partner, {ChargingSession: count}, instead=DELETE_INSTEAD)


@transaction.atomic
def partner_delete(*, partner: RoamingPartner) -> None:
    """Delete a partner that no session points to."""
    partner = RoamingPartner.objects.select_for_update().get(pk=partner.pk)
    partner_deletable(partner=partner)
    partner.delete()


def partner_error_record(*, partner_id: int, module: str, message: str) -> None:
    """Remember the last error of a module (shown in the admin and the API); never raises for a vanished row."""
    with transaction.atomic():
        partner = RoamingPartner.objects.select_for_update().filter(pk=partner_id).first()
        if partner is None:
            return
        errors = dict(partner.last_errors or {})
        errors[module] = {"at": timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ"), "message": message[:500]}
        partner.last_errors = errors
        partner.save(update_fields=["last_errors", "updated_at"])


def partner_push_record(*, partner_id: int, module: str, object_key: str) -> None:
    """Remember the last push a partner accepted for a module (one UPDATE; the admin shows it next to last_errors);
    the module's last error is cleared: it delivers again."""
    stamp = {"at": timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ"), "object": object_key}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE roaming_roamingpartner SET last_pushes = jsonb_set(last_pushes, %s, %s::jsonb), "
            "last_errors = last_errors - %s WHERE id = %s",
            [[module], json.dumps(stamp), module, partner_id],
        )


# --------------------------------------------------------------------------- handshake results


@transaction.atomic
def partner_outgoing_token_issue(*, partner_id: int) -> tuple[RoamingPartner, str]:
    """Before we POST our credentials to them: CREDENTIALS_TOKEN_B, stored (committed) first, since they call our
    versions endpoint with it while they handle our POST."""
    partner = RoamingPartner.objects.select_for_update().get(pk=partner_id)
    if partner.status != PartnerStatus.PENDING:
        raise Conflict(f"The partner is {partner.status}; only a pending partner registers.", code="not_pending")
    raw = _set_our_token(partner, TokenKind.B)
    partner.save(update_fields=["our_token_hash", "our_token_hint", "our_token_kind", "updated_at"])
    return partner, raw


@transaction.atomic
def partner_registered(
    *,
    partner_id: int,
    their_token: str,
    their_token_kind: str,
    credentials_roles: list[dict[str, Any]],
    versions_url: str,
    version: str,
    endpoints: list[dict[str, Any]],
    new_our_token_kind: str | None,
    expect_status: str,
) -> tuple[RoamingPartner, str | None]:
    """Store the outcome of a handshake (theirs or ours, first or a rotation). With `new_our_token_kind` a new token
    of ours is generated (C when they register or rotate) and returned plain, once. `expect_status` is re-checked
    under the row lock: of two concurrent registrations one wins, the other is refused."""
    partner = RoamingPartner.objects.select_for_update().get(pk=partner_id)
    if partner.status != expect_status:
        raise Conflict(f"The partner is {partner.status}.", code=f"not_{expect_status}")
    raw = _set_our_token(partner, new_our_token_kind) if new_our_token_kind else None
    partner.their_token = their_token
    partner.their_token_kind = their_token_kind
    partner.credentials_roles = credentials_roles
    partner.roles = sorted({str(r.get("role")) for r in credentials_roles})
    partner.versions_url = versions_url
    partner.version = version
    partner.endpoints = endpoints
    partner.status = PartnerStatus.REGISTERED
    partner.last_handshake_at = timezone.now()
    errors = dict(partner.last_errors or {})
    errors.pop("credentials", None)
    partner.last_errors = errors
    partner.save()
    if expect_status == PartnerStatus.PENDING:  # a new registration (not a rotation): it gets everything we have
        partner_full_sync(partner=partner)
    return partner, raw


@transaction.atomic
def partner_unregistered(*, partner_id: int) -> RoamingPartner:
    """Unregistration (credentials DELETE, either side): both tokens stop working, the partner is pending again
    (a new token A or their new token A starts over)."""
    partner = RoamingPartner.objects.select_for_update().get(pk=partner_id)
    partner.our_token_hash = None
    partner.our_token_hint = ""
    partner.our_token_kind = ""
    partner.their_token = ""
    partner.their_token_kind = ""
    if partner.status == PartnerStatus.REGISTERED:
        partner.status = PartnerStatus.PENDING
    partner.save()
    return partner


def partner_token_snapshot(*, partner_id: int) -> tuple[str | None, str, str]:
    partner = RoamingPartner.objects.get(pk=partner_id)
    return partner.our_token_hash, partner.our_token_hint, partner.our_token_kind


@transaction.atomic
def partner_token_rotate(*, partner_id: int) -> tuple[RoamingPartner, str]:
    """A new token of ours of the same kind (before our credentials PUT: they fetch our versions with it)."""
    partner = RoamingPartner.objects.select_for_update().select_related("tenant").get(pk=partner_id)
    raw = _set_our_token(partner, partner.our_token_kind or TokenKind.B)
    partner.save(update_fields=["our_token_hash", "our_token_hint", "our_token_kind", "updated_at"])
    return partner, raw


@transaction.atomic
def partner_token_restore(*, partner_id: int, snapshot: tuple[str | None, str, str]) -> None:
    """Put back our previous token after a failed rotation."""
    partner = RoamingPartner.objects.select_for_update().get(pk=partner_id)
    partner.our_token_hash, partner.our_token_hint, partner.our_token_kind = snapshot
    partner.save(update_fields=["our_token_hash", "our_token_hint", "our_token_kind", "updated_at"])


# --------------------------------------------------------------------------- pulling a CPO's data (eMSP role)


def pull_push_seen(*, partner_id: int, module: str) -> None:
    """Our Receiver of `module` got a push from the partner: its scheduled pull waits (apps/roaming/ocpi/pull.py).
    One statement, at most one write a minute per partner and module."""
    now = timezone.now()
    states = PullState.objects.filter(partner_id=partner_id, module=module)
    updated = states.filter(
        models.Q(last_push_at__isnull=True) | models.Q(last_push_at__lt=now - dt.timedelta(seconds=60))
    ).update(last_push_at=now)
    if not updated and not states.exists():
        PullState.objects.get_or_create(partner_id=partner_id, module=module, defaults={"last_push_at": now})


def partner_pull(*, partner: RoamingPartner, full: bool = True) -> list[str]:
    """Pull the partner's locations, tariffs, sessions and CDRs from its Sender interfaces (a full resync by
    default), in a Celery task after the commit; returns the modules it will pull. 409 `not_registered` /
    `not_emsp` when it cannot be pulled, `nothing_to_pull` when the partner lists none of those Sender endpoints."""
    from apps.roaming import tasks

    if partner.status != PartnerStatus.REGISTERED:
        raise Conflict(
            f"The partner is {partner.status}: only a registered partner can be pulled.", code="not_registered"
        )
    if Role.EMSP not in partner.our_roles:
        raise Conflict("We do not play eMSP towards this partner: there is nothing to pull.", code="not_emsp")
    modules: list[str] = [
        m
        for m in ("locations", "tariffs", "sessions", "cdrs")
        if m in partner.enabled_modules and partner.endpoint_url(m, "SENDER")
    ]
    if not modules:
        raise Conflict(
            "The partner lists no Sender endpoint of an enabled module (locations, tariffs, sessions, cdrs).",
            code="nothing_to_pull",
        )
    partner_id = partner.pk
    transaction.on_commit(
        lambda: tasks.pull_partner.apply_async((partner_id,), {"full": full}, queue=settings.OCPI_TASK_QUEUE)
    )
    return modules
