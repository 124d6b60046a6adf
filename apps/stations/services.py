"""Writes of the stations domain: charge point registration and state, and commands to chargers.

`send_command` is THE one way anyone commands a charger (admin, API, sessions, energy): see `dispatch.py`
for how a command reaches whichever process holds the socket.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core import cache, events
from apps.core.errors import ApplicationError, Conflict, NotFound
from apps.core.prepared import prepared_cursor
from apps.stations import command_validation, dispatch, network
from apps.stations.hashers import check_secret, generate_secret, hash_secret
from apps.stations.models import (
    COMMAND_FINAL,
    CertificateAuthority,
    ChargePoint,
    ChargingProfile,
    Command,
    CommandEvent,
    CommandStatus,
    Connector,
    DiagnosticsUpload,
    Evse,
    FirmwareCampaign,
    FirmwareCampaignTarget,
    FirmwareImage,
    LocalListEntry,
    Location,
    PartnerConnector,
    PartnerEvse,
    PartnerEvseStatus,
    PartnerLocation,
    RegistrationStatus,
    SecurityProfile,
    StatusEvent,
)
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

# OCPP 1.6 actions the central system may send (all six feature profiles)
SERVER_ACTIONS: tuple[str, ...] = (
    "CancelReservation",
    "ChangeAvailability",
    "ChangeConfiguration",
    "ClearCache",
    "ClearChargingProfile",
    "DataTransfer",
    "GetCompositeSchedule",
    "GetConfiguration",
    "GetDiagnostics",
    "GetLocalListVersion",
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "ReserveNow",
    "Reset",
    "SendLocalList",
    "SetChargingProfile",
    "TriggerMessage",
    "UnlockConnector",
    "UpdateFirmware",
    # the security extension (OCPP 1.6 security whitepaper edition 3)
    "CertificateSigned",
    "DeleteCertificate",
    "ExtendedTriggerMessage",
    "GetInstalledCertificateIds",
    "GetLog",
    "InstallCertificate",
    "SignedUpdateFirmware",
)
SECURITY_ACTIONS = frozenset(
    {"CertificateSigned", "DeleteCertificate", "GetInstalledCertificateIds", "InstallCertificate"}
)
ACCEPTED_ANSWERS = frozenset({"Accepted", "Scheduled", "RebootRequired", "Unlocked", "AcceptedCanceled"})
# answers that are a success for one action only: no certificate of the type asked is installed
ACCEPTED_ANSWERS_OF = {"GetInstalledCertificateIds": frozenset({"NotFound"})}
DEFAULT_COMMAND_TIMEOUT = 30.0


class ChargePointOffline(ApplicationError):
    status_code = 409

    def __init__(self, identity: str) -> None:
        super().__init__(f"Charge point {identity} is not connected.", code="charge_point_offline")


# --------------------------------------------------------------------------- cached reads


def stations_changed(*, tenant_id: int) -> None:
    """Every write of a location, charge point, EVSE (its status included) or connector calls this: the tenant's
    cached reads of the network (namespace `stations`: the driver station search, `apps/sessions/cache.py`) are
    dropped when the transaction commits (`apps/core/cache.py`)."""
    cache.invalidate("stations", tenant_id)


# --------------------------------------------------------------------------- registration


@transaction.atomic
def charge_point_register(
    *,
    tenant: Tenant,
    identity: str,
    location: Location | None = None,
    password: str | None = None,
    with_password: bool = True,
    **fields: Any,
) -> tuple[ChargePoint, str | None]:
    """Register a charger; returns it and its Basic-auth password (generated unless given), shown only once."""
    if location is not None and location.tenant_id != tenant.pk:
        raise ApplicationError("The location belongs to another tenant.", fields={"location": ["Not found."]})
    if ChargePoint.objects.filter(identity=identity).exists():
        raise Conflict("A charge point with this identity already exists.", fields={"identity": ["Taken."]})
    raw = (password or generate_secret()) if with_password else None
    charge_point = ChargePoint(tenant=tenant, identity=identity, location=location, **fields)
    if raw:
        charge_point.password_hash = hash_secret(raw)
        charge_point.password_changed_at = timezone.now()
    charge_point.full_clean()
    charge_point.save()
    stations_changed(tenant_id=tenant.pk)
    return charge_point, raw


@transaction.atomic
def charge_point_set_password(*, charge_point: ChargePoint, password: str | None = None) -> str:
    """Store a new Basic-auth secret (generated unless given) and return it in clear, once."""
    raw = password or generate_secret()
    charge_point.password_hash = hash_secret(raw)
    charge_point.password_changed_at = timezone.now()
    charge_point.password_pending = False
    charge_point.save(update_fields=["password_hash", "password_changed_at", "password_pending", "updated_at"])
    return raw


def charge_point_rotate_password(
    *, charge_point: ChargePoint, requested_by: Any = None, timeout: float = DEFAULT_COMMAND_TIMEOUT
) -> tuple[str, Command | None]:
    """New secret. An online charger is told first (ChangeConfiguration AuthorizationKey) and the secret is only
    stored once it accepted; an offline one gets it stored at once (configure the charger by hand)."""
    raw = generate_secret()
    if dispatch.presence_get(charge_point.identity) is None:
        charge_point_set_password(charge_point=charge_point, password=raw)
        return raw, None
    command = send_command(
        charge_point=charge_point,
        action="ChangeConfiguration",
        payload={"key": "AuthorizationKey", "value": raw},
        record_payload={"key": "AuthorizationKey", "value": "********"},
        requested_by=requested_by,
        timeout=timeout,
        source="rotate_password",
    )
    if command.status != CommandStatus.ACCEPTED:
        raise ApplicationError(
            f"The charger did not accept the new key ({command.status}); the old password stays valid.",
            code="password_not_rotated",
            fields={"command": [str(command.pk)]},
            status_code=409,
        )
    charge_point_set_password(charge_point=charge_point, password=raw)
    return raw, command


# --------------------------------------------------------------------------- acceptance of pending chargers

PROVISION_TIMEOUT = 15.0


@transaction.atomic
def charge_point_registration_set(*, charge_point: ChargePoint, status: str) -> ChargePoint:
    """Pending or Rejected (the charger hears it at its next BootNotification). Accepting: `charge_point_accept`."""
    if status not in RegistrationStatus.values:
        raise ApplicationError(f"Unknown registration status {status!r}.", fields={"registration_status": ["Invalid."]})
    if status == RegistrationStatus.ACCEPTED:
        raise ApplicationError("Accept a charge point with charge_point_accept.", code="use_accept")
    ChargePoint.objects.filter(pk=charge_point.pk).update(registration_status=status, updated_at=timezone.now())
    charge_point.registration_status = status
    return charge_point


def charge_point_accept(
    *, charge_point: ChargePoint, requested_by: Any = None, timeout: float = PROVISION_TIMEOUT
) -> ChargePoint:
    """An operator accepts a (pending or rejected) charger.

    A charger without a password of its own (auto-registered) is now pending a password. If it is connected it
    is told at once: it is given its own password (ChangeConfiguration AuthorizationKey; stored, hashed, only
    once it answered Accepted) and asked to boot again (TriggerMessage BootNotification), which it does into
    Accepted. If it is offline, or did not take the key, the same happens at its next connection (and
    `charge_points_provision` retries the key for connected ones). From then on its password is required.
    Must run outside a transaction (it waits for the charger).
    """
    with transaction.atomic():
        locked = ChargePoint.objects.select_for_update().get(pk=charge_point.pk)
        locked.registration_status = RegistrationStatus.ACCEPTED
        locked.password_pending = not locked.password_hash
        locked.save(update_fields=["registration_status", "password_pending", "updated_at"])
    if dispatch.presence_get(locked.identity) is not None:
        charge_point_provision(charge_point_id=locked.pk, requested_by=requested_by, timeout=timeout)
    locked.refresh_from_db()
    return locked


async def charge_point_provision_async(
    *,
    charge_point_id: int,
    requested_by: Any = None,
    timeout: float = PROVISION_TIMEOUT,
    delay: float = 0.0,
    tell: bool = True,
) -> bool | None:
    """Give an accepted, connected charger its own password if it still needs one, then (`tell`) have it boot
    again into Accepted. True: the charger took its password; False: it did not (it stays pending a password);
    None: nothing to do, offline, or already being provisioned by another process."""
    if delay:
        await asyncio.sleep(delay)
    cp = await sync_to_async(ChargePoint.objects.filter(pk=charge_point_id).first)()
    if cp is None or cp.registration_status != RegistrationStatus.ACCEPTED:
        return None
    if not await dispatch.provision_lock(cp.identity, ttl=int(timeout * 3) + 5):
        return None
    taken: bool | None = None
    try:
        if cp.password_pending:
            raw = generate_secret()
            command = await send_command_async(
                charge_point=cp,
                action="ChangeConfiguration",
                payload={"key": "AuthorizationKey", "value": raw},
                record_payload={"key": "AuthorizationKey", "value": "********"},
                requested_by=requested_by,
                timeout=timeout,
                source="provision",
            )
            taken = command.status == CommandStatus.ACCEPTED
            if taken:
                await sync_to_async(charge_point_set_password)(charge_point=cp, password=raw)
            else:
                logger.warning(
                    "%s did not take its AuthorizationKey (%s); it stays pending", cp.identity, command.status
                )
        if tell:
            await send_command_async(
                charge_point=cp,
                action="TriggerMessage",
                payload={"requestedMessage": "BootNotification"},
                requested_by=requested_by,
                timeout=timeout,
                source="provision",
            )
    except ChargePointOffline:
        return None
    finally:
        await dispatch.provision_unlock(cp.identity)
    return taken


def charge_point_provision(
    *, charge_point_id: int, requested_by: Any = None, timeout: float = PROVISION_TIMEOUT, tell: bool = True
) -> bool | None:
    """Sync `charge_point_provision_async` (admin, API, Celery); outside any transaction."""
    if connection.in_atomic_block:
        raise RuntimeError("charge_point_provision waits for a charger: call it outside transaction.atomic().")
    return async_to_sync(charge_point_provision_async)(
        charge_point_id=charge_point_id, requested_by=requested_by, timeout=timeout, tell=tell
    )


def charge_points_provision(*, timeout: float = PROVISION_TIMEOUT) -> int:
    """Beat: retry the password of connected, accepted chargers still pending one (they were told already)."""
    ids = list(
        ChargePoint.objects.filter(
            password_pending=True, registration_status=RegistrationStatus.ACCEPTED, online=True
        ).values_list("pk", flat=True)
    )
    return sum(1 for pk in ids if charge_point_provision(charge_point_id=pk, timeout=timeout, tell=False))


@dataclass(frozen=True)
class Handshake:
    """What the OCPP endpoint needs to know about a charger at connect time."""

    charge_point_id: int
    tenant_id: int
    identity: str
    registration_status: str
    heartbeat_interval: int
    lenient: bool
    vendor: str
    password_pending: bool = False


def charge_point_authenticate(
    *, identity: str, password: str | None, tls: bool = False, client_certificate: str | None = None
) -> Handshake:
    """The charger behind a WebSocket handshake; refused with an `ApplicationError` whose `status_code` is the
    handshake's HTTP answer and whose message tells the technician what to fix: 404 unknown id, 401 missing or
    wrong password, 403 an id that cannot be auto-registered.

    A charger with a stored secret must present it (HTTP Basic, security profile 1); one without a secret
    connects on its identity alone (profile 0, only behind a trusted network or TLS client auth). Unknown
    ids are refused, unless settings.OCPP_AUTO_REGISTER_TENANT names a tenant: then the charger is
    registered there as Pending (no secret) and an operator accepts it.

    Security profiles (OCPP 1.6 security whitepaper): what the connection offers is 1 (plain), 2 (TLS: `tls`) or 3
    (TLS with a client certificate issued by the tenant's CA whose common name is the charge point id, valid now);
    below the charger's `security_profile` it is refused (403, saying what is missing). Profile 3 needs no
    password. A profile the charger accepted (`security_profile_pending`) becomes its profile at its first
    connection that meets it.
    """
    charge_point = _charge_point_for_handshake(identity)
    if charge_point is None:
        slug = getattr(settings, "OCPP_AUTO_REGISTER_TENANT", "")
        tenant = Tenant.objects.filter(slug=slug, is_active=True).first() if slug else None
        if tenant is None:
            raise NotFound(
                f"Unknown charge point id {identity!r}: the last part of the URL must be the charge point id "
                "registered in the back office (register it first).",
                code="unknown_charge_point",
            )
        try:
            charge_point, _ = charge_point_register(
                tenant=tenant,
                identity=identity,
                with_password=False,
                registration_status=RegistrationStatus.PENDING,
            )
        except ApplicationError as error:
            logger.warning("auto-registration of %r failed: %s", identity, error.message)
            raise ApplicationError(
                f"Charge point id {identity!r} cannot be registered: {error.message}",
                code="registration_refused",
                status_code=403,
            ) from None
    else:
        offered = _security_profile_check(charge_point, tls=tls, client_certificate=client_certificate)
        if offered < SecurityProfile.CLIENT_CERTIFICATE:
            _password_check(charge_point, password)
        charge_point = _security_profile_promote(charge_point, offered)
    return _handshake(charge_point)


# What a handshake reads of its charger: `_charge_point_for_handshake` loads only these (the rest deferred).
_HANDSHAKE_FIELDS = (
    "id",
    "tenant_id",
    "identity",
    "password_hash",
    "password_pending",
    "registration_status",
    "lenient",
    "security_profile",
    "security_profile_pending",
    "heartbeat_interval",
    "vendor",
)
_HANDSHAKE_SQL = f"SELECT {', '.join(_HANDSHAKE_FIELDS)} FROM stations_chargepoint WHERE identity = %s"  # noqa: S608


def _charge_point_for_handshake(identity: str) -> ChargePoint | None:
    """The charger of a handshake, with the fields the handshake reads. In SQL because a whole fleet reconnects at
    once after a deploy: `ChargePoint.objects.filter(identity=...).first()` cost 1.45 ms of Python (compiling a
    52-column query), this 0.25 ms (measured on this machine; py-spy of a 3,000-charger reconnect storm: the ORM
    read was 12 % of the time the daphne process held the GIL)."""
    with connection.cursor() as cursor:
        cursor.execute(_HANDSHAKE_SQL, [identity])
        row = cursor.fetchone()
    return None if row is None else ChargePoint.from_db(connection.alias, _HANDSHAKE_FIELDS, row)


def _password_check(charge_point: ChargePoint, password: str | None) -> None:
    identity = charge_point.identity
    if charge_point.password_hash and password is None:
        raise ApplicationError(
            f"Charge point {identity!r} needs its password: HTTP Basic authentication, user = the charge point id, "
            "password = its AuthorizationKey.",
            code="password_required",
            status_code=401,
        )
    elif charge_point.password_hash and not check_secret(password or "", charge_point.password_hash):
        raise ApplicationError(
            f"Wrong password for charge point {identity!r} (HTTP Basic: user = the charge point id, "
            "password = its AuthorizationKey).",
            code="wrong_password",
            status_code=401,
        )


def _client_certificate_error(charge_point: ChargePoint, pem: str) -> str | None:
    """Why this client certificate does not prove the charger (None: it does)."""
    from cryptography.exceptions import InvalidSignature

    from apps.stations import certificates

    try:
        cert = certificates.load_chain(pem)[0]
    except (certificates.CertificateError, IndexError):
        return "the client certificate is not a PEM X.509 certificate"
    name = certificates.common_name(cert.subject)
    if name != charge_point.identity:
        return f"the client certificate's common name {name!r} is not the charge point id"
    now = timezone.now()
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return (
            f"the client certificate is not valid now (valid {cert.not_valid_before_utc} to {cert.not_valid_after_utc})"
        )
    ca = CertificateAuthority.objects.filter(tenant_id=charge_point.tenant_id).only("certificate").first()
    if ca is None:
        return "the operator has no certificate authority yet (the charger gets its certificate by SignCertificate)"
    try:
        cert.verify_directly_issued_by(certificates.load_certificate(ca.certificate))
    except (ValueError, TypeError, InvalidSignature):
        return "the client certificate is not issued by the operator's certificate authority"
    return None


def _security_profile_check(charge_point: ChargePoint, *, tls: bool, client_certificate: str | None) -> int:
    """The profile this connection offers; refused (403) below the charger's profile."""
    certificate_error = None
    if tls and client_certificate:
        certificate_error = _client_certificate_error(charge_point, client_certificate)
        offered = SecurityProfile.CLIENT_CERTIFICATE if certificate_error is None else SecurityProfile.BASIC_TLS
    else:
        offered = SecurityProfile.BASIC_TLS if tls else SecurityProfile.BASIC
    required = charge_point.security_profile
    if offered >= required:
        return int(offered)
    if not tls:
        missing = "connect over TLS (wss://)"
    elif certificate_error is not None:
        missing = certificate_error
    else:
        missing = "present its client certificate (TLS client authentication)"
    raise ApplicationError(
        f"Charge point {charge_point.identity!r} uses security profile {required}: {missing}.",
        code="security_profile",
        status_code=403,
    )


def _security_profile_promote(charge_point: ChargePoint, offered: int) -> ChargePoint:
    """The profile the charger accepted becomes its profile once it connects with it (never a downgrade)."""
    pending = charge_point.security_profile_pending
    if pending is not None and offered >= pending:
        ChargePoint.objects.filter(pk=charge_point.pk).update(
            security_profile=max(pending, charge_point.security_profile), security_profile_pending=None
        )
        charge_point.security_profile = max(pending, charge_point.security_profile)
        charge_point.security_profile_pending = None
        logger.info("%s now uses security profile %s", charge_point.identity, charge_point.security_profile)
    return charge_point


def _handshake(charge_point: ChargePoint) -> Handshake:
    return Handshake(
        charge_point_id=charge_point.pk,
        tenant_id=charge_point.tenant_id,
        identity=charge_point.identity,
        registration_status=charge_point.registration_status,
        heartbeat_interval=charge_point.heartbeat_interval,
        lenient=charge_point.lenient,
        vendor=charge_point.vendor,
        password_pending=charge_point.password_pending
        and charge_point.registration_status == RegistrationStatus.ACCEPTED,
    )


# --------------------------------------------------------------------------- liveness


# The connects and the closes of a round (at most one change per charger) in one statement each. One statement per
# change, the graceful stop of 3,000 sockets spent 3.6 s in six batches of 500 UPDATEs (benchmarks/ocpp_bench.py
# --storm; the applications of the stopping process were waiting for these writes, the interpreter mostly idle).
_CONNECTED_SQL = """
WITH c(id, connection) AS (SELECT * FROM unnest(%(ids)s::bigint[], %(connections)s::text[])),
old AS (SELECT cp.id, cp.online FROM stations_chargepoint cp JOIN c ON c.id = cp.id)
UPDATE stations_chargepoint AS cp
SET online = true, connection_id = c.connection, connected_at = %(now)s, last_seen_at = %(now)s
FROM c JOIN old ON old.id = c.id WHERE cp.id = c.id RETURNING cp.id, cp.tenant_id, old.online
"""
_DISCONNECTED_SQL = """
UPDATE stations_chargepoint AS cp SET online = false, connection_id = ''
FROM unnest(%(ids)s::bigint[], %(connections)s::text[]) AS c(id, connection)
WHERE cp.id = c.id AND cp.connection_id = c.connection RETURNING cp.id, cp.tenant_id
"""


def _rounds(changes: Sequence[tuple[bool, int, str]]) -> list[list[tuple[int, bool, int, str]]]:
    """The changes (with their index) cut, in order, into rounds where each charger appears at most once."""
    rounds: list[list[tuple[int, bool, int, str]]] = [[]]
    seen: set[int] = set()
    for index, (online, charge_point_id, connection_id) in enumerate(changes):
        if charge_point_id in seen:
            rounds.append([])
            seen = set()
        seen.add(charge_point_id)
        rounds[-1].append((index, online, charge_point_id, connection_id))
    return rounds


def _lock_in_id_order(cursor: Any, ids: Iterable[int]) -> None:
    """The writers of many charge points at once (the connects/closes batch, the heartbeat batch) lock their rows in
    id order first, as the presence refresh does: each locking in its own order, two of them deadlocked and
    PostgreSQL aborted one (seen once in a 3,000-charger reconnect storm; the retry of `run_db` saved it)."""
    cursor.execute(
        "SELECT id FROM stations_chargepoint WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE", [sorted(set(ids))]
    )


def charge_point_disconnected(*, charge_point_id: int, connection_id: str) -> bool:
    """Offline, unless a newer connection of the same charger took over meanwhile (the newest wins)."""
    return charge_points_connections_record(changes=[(False, charge_point_id, connection_id)])[0]


def charge_points_connections_record(*, changes: Sequence[tuple[bool, int, str]]) -> list[bool]:
    """Sockets opened (True) and closed (False), as (online, charge point id, connection id), in their order, in one
    transaction: a connect makes the charger online on that connection (a status event and a
    ChargePointConnectionChanged when it was offline); a close makes it offline unless a newer connection took it
    over (the newest wins). For each change, whether it was applied to the charger's current connection. A daphne
    process records its sockets' connects and closes in batches (`apps/ocpp/connections.py`): one by one, the
    graceful stop of a process holding 3,194 chargers took 21 s, each close a transaction with an ORM insert
    and an outbox wake-up (a Redis round trip)."""
    now = timezone.now()
    applied: list[bool] = []
    changed: list[tuple[int, int, bool]] = []
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_in_id_order(cursor, [charge_point_id for _, charge_point_id, _ in changes])
        outcome: dict[int, tuple[int, bool] | None] = {}  # change index -> (tenant, whether it changed the state)
        for round_ in _rounds(changes):
            for online, sql in ((False, _DISCONNECTED_SQL), (True, _CONNECTED_SQL)):
                these = [(index, pk, conn) for index, is_online, pk, conn in round_ if is_online is online]
                if not these:
                    continue
                cursor.execute(
                    sql, {"ids": [pk for _, pk, _ in these], "connections": [c for _, _, c in these], "now": now}
                )
                rows = {row[0]: row[1:] for row in cursor.fetchall()}
                for index, pk, _ in these:
                    row = rows.get(pk)
                    outcome[index] = None if row is None else (row[0], not online or not row[1])
        for index, (online, charge_point_id, _) in enumerate(changes):
            result = outcome.get(index)
            applied.append(result is not None)
            if result is not None and result[1]:
                changed.append((charge_point_id, result[0], online))
        if changed:
            StatusEvent.objects.bulk_create(
                [
                    StatusEvent(charge_point_id=pk, status="Online" if online else "Offline", timestamp=now)
                    for pk, _, online in changed
                ]
            )
            events.publish_many(
                [
                    events.ChargePointConnectionChanged(tenant_id=tenant_id, charge_point_id=pk, online=online, at=now)
                    for pk, tenant_id, online in changed
                ]
            )
    return applied


def charge_points_mark_offline(*, factor: float | None = None, now: datetime | None = None) -> list[int]:
    """Chargers that sent no frame for heartbeat_interval x factor go offline (Celery beat)."""
    now = now or timezone.now()
    factor = factor if factor is not None else getattr(settings, "OCPP_OFFLINE_FACTOR", 2.5)
    stale = Q(last_seen_at__isnull=True) | Q(
        last_seen_at__lt=now - F("heartbeat_interval") * timedelta(seconds=1) * factor
    )
    with transaction.atomic():
        ids = list(
            ChargePoint.objects.select_for_update(skip_locked=True)
            .filter(stale, online=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if ids:
            ChargePoint.objects.filter(pk__in=ids).update(online=False, connection_id="")
            StatusEvent.objects.bulk_create(
                [
                    StatusEvent(charge_point_id=pk, status="Offline", info="no frame (timeout)", timestamp=now)
                    for pk in ids
                ]
            )
            for pk, tenant_id in ChargePoint.objects.filter(pk__in=ids).values_list("pk", "tenant_id"):
                events.publish(
                    events.ChargePointConnectionChanged(tenant_id=tenant_id, charge_point_id=pk, online=False, at=now)
                )
    return ids


TOUCH_BATCH = 1000  # rows locked and written per transaction of a bulk touch

# The rows of open sockets whose `last_seen_at` needs refreshing before the offline sweep could take them: seen
# longer ago than half their offline limit (heartbeat_interval x OCPP_OFFLINE_FACTOR) minus one refresh period (so
# a sweep before the next refresh, even a late one, finds them well within the limit). Locked in id order; a row
# another writer holds (a frame of that charger being recorded) is skipped: that writer sets `last_seen_at` itself.
_TOUCH_SQL = """
WITH stale AS (
    SELECT id FROM stations_chargepoint
    WHERE id = ANY(%(ids)s::bigint[])
      AND NOT coalesce(online AND last_seen_at >= %(at)s - greatest(
          0, heartbeat_interval * %(half_factor)s::float8 - %(refresh)s::float8
      ) * interval '1 second', false)
    ORDER BY id
    FOR UPDATE SKIP LOCKED
)
UPDATE stations_chargepoint cp SET last_seen_at = %(at)s, online = true FROM stale WHERE cp.id = stale.id
"""


def charge_point_touch(
    *, charge_point_ids: Iterable[int], at: datetime | None = None, refresh_s: float = dispatch.PRESENCE_REFRESH
) -> int:
    """Bulk 'last seen' for sockets that are open (the presence refresh, every `refresh_s`); returns the rows
    written. Only rows the offline sweep (`charge_points_mark_offline`) could take before the next refresh are
    written, in batches of TOUCH_BATCH rows per transaction, each one statement.

    With 10,000 chargers (benchmarks/ocpp_bench.py: a frame each every 60 s, heartbeat_interval 300 s) the touch
    rewrote every row not seen in the last 10 s, ~6,600 rows in one transaction every 20 s, and a StatusNotification
    of any of them waited for that transaction's locks; the ORM's `pk__in` of 10,000 ids was also compiled and bound
    in Python while the event loop waited for the interpreter. Now a charger with that interval is written only
    when it sent no frame for 355 s (750 / 2 - 20), and the bench's chargers, a frame a minute, never are."""
    ids = sorted(set(charge_point_ids))
    at = at or timezone.now()
    written = 0
    params = {
        "at": at,
        "half_factor": getattr(settings, "OCPP_OFFLINE_FACTOR", 2.5) / 2,
        "refresh": refresh_s,
    }
    for start in range(0, len(ids), TOUCH_BATCH):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_TOUCH_SQL, {**params, "ids": ids[start : start + TOUCH_BATCH]})
            written += cursor.rowcount
    return written


# --------------------------------------------------------------------------- what the charger reports


@dataclass(frozen=True)
class BootResult:
    status: str
    interval: int
    current_time: datetime


def charge_point_boot(*, charge_point_id: int, info: dict[str, Any]) -> BootResult:
    """BootNotification: store what the charger says about itself; answer with its registration status."""
    now = timezone.now()
    fields = {
        "vendor": info.get("charge_point_vendor", ""),
        "model": info.get("charge_point_model", ""),
        "serial_number": info.get("charge_point_serial_number") or "",
        "charge_box_serial_number": info.get("charge_box_serial_number") or "",
        "firmware_version": info.get("firmware_version") or "",
        "iccid": info.get("iccid") or "",
        "imsi": info.get("imsi") or "",
        "meter_type": info.get("meter_type") or "",
        "meter_serial_number": info.get("meter_serial_number") or "",
    }
    with connection.cursor() as cursor:
        cursor.execute(_BOOT_SQL, {**fields, "now": now, "cp": charge_point_id})
        row = cursor.fetchone()
    if row is None:
        return BootResult(RegistrationStatus.REJECTED, 300, now)
    return BootResult(row[0], row[1], now)


# One statement (a fleet boots again after a deploy): the ORM's update and read of the answer cost 1.8 ms of
# Python per boot, this 0.3 ms (measured on this machine).
_BOOT_SQL = """
UPDATE stations_chargepoint SET last_boot_at = %(now)s, last_seen_at = %(now)s, online = true,
    vendor = %(vendor)s, model = %(model)s, serial_number = %(serial_number)s,
    charge_box_serial_number = %(charge_box_serial_number)s, firmware_version = %(firmware_version)s,
    iccid = %(iccid)s, imsi = %(imsi)s, meter_type = %(meter_type)s, meter_serial_number = %(meter_serial_number)s
WHERE id = %(cp)s RETURNING registration_status, heartbeat_interval
"""


def charge_point_heartbeat(*, charge_point_id: int) -> datetime:
    now = timezone.now()
    ChargePoint.objects.filter(pk=charge_point_id).update(last_heartbeat_at=now, last_seen_at=now, online=True)
    return now


def charge_points_heartbeat(*, beats: dict[int, datetime]) -> None:
    """Heartbeats of many chargers (charge point id -> when) in one statement; never moves a time back."""
    if not beats:
        return
    rows = ", ".join(["(%s::bigint, %s::timestamptz)"] * len(beats))
    params: list[Any] = [value for pair in beats.items() for value in pair]
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_in_id_order(cursor, beats)
        cursor.execute(
            "UPDATE stations_chargepoint AS cp SET online = true,"  # noqa: S608 - placeholders only
            " last_heartbeat_at = GREATEST(cp.last_heartbeat_at, beat.at),"
            " last_seen_at = GREATEST(cp.last_seen_at, beat.at)"
            f" FROM (VALUES {rows}) AS beat(id, at) WHERE cp.id = beat.id",
            params,
        )


# One statement per StatusNotification (it is the hottest write of the OCPP endpoint): update the charger
# (connector 0) or the EVSE (a late, queued status never overwrites a newer one) and last_seen_at, append the
# status history, and return what the event needs (tenant, previous status, whether the EVSE exists, and whether
# the stored status changed: status, error code, vendor error code or info).
_STATUS_SQL = """
WITH old AS (
    SELECT {old_id} AS id, status, error_code, vendor_error_code, status_info FROM {old_table} WHERE {old_where}
), cp AS (
    UPDATE stations_chargepoint SET last_seen_at = %(now)s{cp_values}
    WHERE id = %(cp)s RETURNING tenant_id, identity
), evse AS (
    {evse_update}
), history AS (
    INSERT INTO stations_statusevent
        (charge_point_id, connector_id, status, error_code, vendor_error_code, info, "timestamp", received_at)
    SELECT %(cp)s, %(connector)s, %(status)s, %(error)s, %(vendor)s, %(info)s, %(at)s, %(now)s FROM cp
)
SELECT cp.tenant_id, cp.identity, (SELECT status FROM old), (SELECT count(*) FROM old),
    EXISTS (SELECT 1 FROM evse) AND NOT EXISTS (
        SELECT 1 FROM old WHERE status = %(status)s AND error_code = %(error)s
        AND vendor_error_code = %(vendor)s AND status_info = %(info)s
    )
FROM cp
"""
_STATUS_VALUES = (
    "status = %(status)s, error_code = %(error)s, vendor_error_code = %(vendor)s, status_info = %(info)s, "
    "status_at = %(at)s"
)
_STATUS_SQL_CHARGER = _STATUS_SQL.format(
    old_id="id",
    old_table="stations_chargepoint",
    old_where="id = %(cp)s",
    cp_values=", " + _STATUS_VALUES,
    evse_update="SELECT 1",
)
_STATUS_SQL_CONNECTOR = _STATUS_SQL.format(
    old_id="id",
    old_table="stations_evse",
    old_where="charge_point_id = %(cp)s AND connector_id = %(connector)s",
    cp_values="",
    evse_update=(  # built from the constants above; every value is a query parameter
        "UPDATE stations_evse SET " + _STATUS_VALUES + ", status_received_at = %(now)s "  # noqa: S608
        "WHERE id IN (SELECT id FROM old) AND (status_at IS NULL OR status_at <= %(at)s) RETURNING id"
    ),
)


def status_record(
    *,
    charge_point_id: int,
    connector_id: int,
    status: str,
    error_code: str = "NoError",
    info: str = "",
    vendor_error_code: str = "",
    timestamp: datetime | None = None,
) -> None:
    """StatusNotification: connector 0 is the charger itself; an unknown connector id gets an EVSE row.

    The status update and its event's outbox rows commit together (a crash between two autocommit statements
    lost the event): three round trips for a changed status (update, outbox insert, commit), two for a repeated or
    late one (no event); the first status of an unknown connector creates its EVSE with one more."""
    now = timezone.now()
    at = timestamp or now
    error = "" if error_code == "NoError" else error_code
    params: dict[str, Any] = {
        "cp": charge_point_id,
        "connector": connector_id,
        "status": status,
        "error": error,
        "vendor": vendor_error_code or "",
        "info": info or "",
        "at": at,
        "now": now,
    }
    with transaction.atomic():
        _status_record(charge_point_id, connector_id, status, error, vendor_error_code, info, at, now, params)


def _status_record(
    charge_point_id: int,
    connector_id: int,
    status: str,
    error: str,
    vendor_error_code: str,
    info: str,
    at: datetime,
    now: datetime,
    params: dict[str, Any],
) -> None:
    # prepared (server-side binding, planned once per connection): 0.23 ms of Python and 0.7 ms of wall time per
    # status against 0.40 and 1.4 ms bound on the client and planned each time (2,500 statuses each way, interleaved)
    # (its errors translated to Django's, as a Django cursor's are: the OCPP path retries a deadlock by them)
    with connection.cursor() as django_cursor, connection.wrap_database_errors:
        cursor = prepared_cursor(django_cursor)
        cursor.execute(_STATUS_SQL_CHARGER if connector_id == 0 else _STATUS_SQL_CONNECTOR, params, prepare=True)
        row = cursor.fetchone()
    if row is None:  # the charger was deleted meanwhile: nothing recorded
        logger.warning("status of unknown charge point %s ignored", charge_point_id)
        return
    tenant_id, identity, previous_status, found, changed = row
    if found and not changed and status != "Faulted" and not error:
        # the same status again (a charger repeating it, a TriggerMessage) or a late one older than the stored
        # status: in the history above, news to nobody. Its event made every subscriber work (roaming pushes,
        # webhooks) for nothing, and its outbox row and kick cost more than the status itself (a repeated status of
        # a connector, DEBUG off: 0.27-0.34 ms of CPU without them, 1.01-1.18 ms with). A fault repeated is still
        # published: the alert counts it as one more occurrence.
        return
    if connector_id != 0 and (not found or previous_status != status):  # an EVSE's status: the station search shows it
        stations_changed(tenant_id=tenant_id)
    if connector_id != 0 and not found:  # a new EVSE: its whole description is news (then its status, below)
        evse = Evse.objects.create(
            tenant_id=tenant_id,
            charge_point_id=charge_point_id,
            connector_id=connector_id,
            evse_uid=_auto_evse_uid(identity, connector_id),
            status_received_at=now,
            status=status,
            error_code=error,
            vendor_error_code=vendor_error_code or "",
            status_info=info or "",
            status_at=at,
        )
        network.evse_changed(evse=evse)
    events.publish(
        events.ConnectorStatusChanged(
            tenant_id=tenant_id,
            charge_point_id=charge_point_id,
            connector_id=connector_id,
            status=status,
            error_code=error,
            previous_status=previous_status or "",
            at=at,
        )
    )


def _auto_evse_uid(identity: str, connector_id: int) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "*-" else "-" for ch in identity)[:44]
    return f"{cleaned}*{connector_id}"


@transaction.atomic
def firmware_status_record(*, charge_point_id: int, status: str) -> None:
    now = timezone.now()
    ChargePoint.objects.filter(pk=charge_point_id).update(
        firmware_status=status, firmware_status_at=now, last_seen_at=now
    )
    target = (
        FirmwareCampaignTarget.objects.select_for_update()
        .filter(charge_point_id=charge_point_id)
        .exclude(state__in=[FirmwareCampaignTarget.State.PENDING, FirmwareCampaignTarget.State.REFUSED])
        .order_by("-id")
        .first()
    )
    if target is not None and status in FirmwareCampaignTarget.State.values:
        target.state = status
        target.save(update_fields=["state", "updated_at"])


def diagnostics_status_record(*, charge_point_id: int, status: str) -> None:
    now = timezone.now()
    ChargePoint.objects.filter(pk=charge_point_id).update(
        diagnostics_status=status, diagnostics_status_at=now, last_seen_at=now
    )


def diagnostics_request_create(*, charge_point: ChargePoint) -> DiagnosticsUpload:
    return DiagnosticsUpload.objects.create(tenant_id=charge_point.tenant_id, charge_point=charge_point)


@transaction.atomic
def diagnostics_store(*, upload: DiagnosticsUpload, name: str, content: Any) -> DiagnosticsUpload:
    """The charger uploaded its diagnostics file (HTTP POST/PUT to the location given in GetDiagnostics)."""
    from django.core.files.base import ContentFile

    data = content if isinstance(content, bytes) else content.read()
    safe = "".join(ch for ch in name if ch.isalnum() or ch in "._-")[:100] or "diagnostics.bin"
    upload.file.save(f"{upload.charge_point.identity}-{upload.token[:8]}-{safe}", ContentFile(data), save=False)
    upload.file_name = safe
    upload.size = len(data)
    upload.uploaded_at = timezone.now()
    upload.save(update_fields=["file", "file_name", "size", "uploaded_at"])
    return upload


# --------------------------------------------------------------------------- EVSEs


@transaction.atomic
def evse_create(*, charge_point: ChargePoint, connector_id: int, evse_uid: str, **fields: Any) -> Evse:
    evse = Evse(
        tenant_id=charge_point.tenant_id, charge_point=charge_point, connector_id=connector_id, evse_uid=evse_uid
    )
    for key, value in fields.items():
        setattr(evse, key, value)
    evse.full_clean()
    evse.save()
    network.evse_changed(evse=evse)
    return evse


@transaction.atomic
def connector_create(*, evse: Evse, **fields: Any) -> Connector:
    connector = Connector(evse=evse, **fields)
    connector.full_clean()
    connector.save()
    network.evse_changed(evse=evse)
    return connector


# --------------------------------------------------------------------------- commands


InvalidCommand = command_validation.InvalidCommand


def command_validate(*, charge_point: ChargePoint, action: str, payload: Any) -> None:
    """Refuse, before anything is recorded or sent, a payload that is wrong for the OCPP 1.6 schema, the
    specification or this charger (`command_validation`): InvalidCommand (400) naming each field. The API
    serializers and the admin forms call it too, so all three say the same."""
    if action not in SERVER_ACTIONS:
        raise ApplicationError(f"Unknown OCPP 1.6 command {action!r}.", code="unknown_command")
    facts = command_validation.facts_for(charge_point.pk)
    command_validation.check_command(action=action, payload=payload, facts=facts)


def _command_create(
    *,
    charge_point: ChargePoint,
    action: str,
    payload: dict[str, Any],
    record_payload: dict[str, Any] | None,
    requested_by: Any,
    source: str,
) -> Command:
    with transaction.atomic():
        command = Command.objects.create(
            tenant_id=charge_point.tenant_id,
            charge_point=charge_point,
            action=action,
            payload=record_payload if record_payload is not None else payload,
            requested_by=requested_by if getattr(requested_by, "pk", None) else None,
            source=source,
        )
        CommandEvent.objects.create(command=command, status=CommandStatus.QUEUED, detail=f"by {requested_by or source}")
    return command


def _command_prepare(
    *,
    charge_point: ChargePoint,
    action: str,
    payload: dict[str, Any],
    record_payload: dict[str, Any] | None,
    requested_by: Any,
    source: str,
) -> Command:
    command_validate(charge_point=charge_point, action=action, payload=payload)
    return _command_create(
        charge_point=charge_point,
        action=action,
        payload=payload,
        record_payload=record_payload,
        requested_by=requested_by,
        source=source,
    )


def command_mark_sent(*, command_id: int) -> None:
    with transaction.atomic():
        if Command.objects.filter(pk=command_id, status=CommandStatus.QUEUED).update(
            status=CommandStatus.SENT, sent_at=timezone.now()
        ):
            CommandEvent.objects.create(command_id=command_id, status=CommandStatus.SENT)


def classify_answer(response: dict[str, Any], action: str = "") -> str:
    answer = response.get("status")
    if answer is None or answer in ACCEPTED_ANSWERS or answer in ACCEPTED_ANSWERS_OF.get(action, ()):
        return CommandStatus.ACCEPTED
    return CommandStatus.REJECTED


@transaction.atomic
def command_record_result(
    *,
    command_id: int,
    status: str,
    response: dict[str, Any] | None = None,
    error: str = "",
    request_payload: dict[str, Any] | None = None,
) -> Command | None:
    """Store the charger's answer (or the failure) once; apply what an accepted command changed."""
    command = Command.objects.select_for_update().filter(pk=command_id).first()
    if command is None or command.status in COMMAND_FINAL:
        return command
    command.status = status
    command.response = response
    command.error = error
    command.completed_at = timezone.now()
    command.save(update_fields=["status", "response", "error", "completed_at"])
    CommandEvent.objects.create(
        command=command, status=status, detail=error or json.dumps(response or {}, default=str)[:2000]
    )
    events.publish(
        events.CommandFinished(
            tenant_id=command.tenant_id,
            command_id=command.pk,
            charge_point_id=command.charge_point_id,
            action=command.action,
            status=status,
        )
    )
    if status == CommandStatus.ACCEPTED:
        _apply_accepted(command, request_payload if request_payload is not None else command.payload, response or {})
    if command.action == "UpdateFirmware":
        FirmwareCampaignTarget.objects.filter(command=command).update(
            state=FirmwareCampaignTarget.State.SENT
            if status == CommandStatus.ACCEPTED
            else FirmwareCampaignTarget.State.REFUSED,
            detail=error or status,
        )
    return command


def _apply_accepted(command: Command, payload: dict[str, Any], response: dict[str, Any]) -> None:
    charge_point_id = command.charge_point_id
    action = command.action
    if action in SECURITY_ACTIONS:
        from apps.stations import security

        security.apply_accepted(command, payload, response)  # the payloads were validated before sending
    elif action == "GetConfiguration":
        snapshot = {
            item["key"]: {"value": item.get("value"), "readonly": item.get("readonly", False)}
            for item in response.get("configurationKey", [])
            if item.get("key") != "AuthorizationKey"
        }
        cp = ChargePoint.objects.select_for_update().get(pk=charge_point_id)
        full = not payload.get("key")
        cp.configuration = snapshot if full else {**cp.configuration, **snapshot}
        cp.configuration_complete = full or cp.configuration_complete
        cp.configuration_read_at = timezone.now()
        cp.save(update_fields=["configuration", "configuration_complete", "configuration_read_at"])
    elif action == "ChangeConfiguration":
        key, value = payload.get("key"), payload.get("value")
        cp = ChargePoint.objects.select_for_update().get(pk=charge_point_id)
        if key != "AuthorizationKey":
            current = cp.configuration.get(key, {}) if isinstance(cp.configuration, dict) else {}
            cp.configuration = {**cp.configuration, key: {**current, "value": value}}
        if key == "HeartbeatInterval" and str(value).isdigit():
            cp.heartbeat_interval = max(int(str(value)), 10)
        if key == "SecurityProfile" and str(value).strip().isdigit() and int(str(value)) > cp.security_profile:
            cp.security_profile_pending = int(str(value))  # its profile once it reconnects with it
        cp.save(update_fields=["configuration", "heartbeat_interval", "security_profile_pending"])
    elif action == "SendLocalList":
        entries = payload.get("localAuthorizationList", [])
        if payload.get("updateType") == "Full":
            LocalListEntry.objects.filter(charge_point_id=charge_point_id).delete()
        for entry in entries:
            info = entry.get("idTagInfo")
            if info is None:
                LocalListEntry.objects.filter(charge_point_id=charge_point_id, id_tag=entry["idTag"]).delete()
                continue
            LocalListEntry.objects.update_or_create(
                charge_point_id=charge_point_id,
                id_tag=entry["idTag"],
                defaults={
                    "status": info.get("status", "Accepted"),
                    "expiry_date": info.get("expiryDate"),
                    "parent_id_tag": info.get("parentIdTag") or "",
                },
            )
        ChargePoint.objects.filter(pk=charge_point_id).update(local_list_version=payload["listVersion"])
    elif action == "GetLocalListVersion":
        ChargePoint.objects.filter(pk=charge_point_id).update(local_list_version=response.get("listVersion", 0))
    elif action == "SetChargingProfile":
        profile = payload["csChargingProfiles"]
        ChargingProfile.objects.update_or_create(
            charge_point_id=charge_point_id,
            profile_id=profile["chargingProfileId"],
            defaults={
                "connector_id": payload["connectorId"],
                "stack_level": profile["stackLevel"],
                "purpose": profile["chargingProfilePurpose"],
                "kind": profile["chargingProfileKind"],
                "transaction_id": profile.get("transactionId"),
                "payload": profile,
            },
        )
    elif action == "ClearChargingProfile":
        profiles = ChargingProfile.objects.filter(charge_point_id=charge_point_id)
        if "id" in payload:
            profiles = profiles.filter(profile_id=payload["id"])
        if "connectorId" in payload:
            profiles = profiles.filter(connector_id=payload["connectorId"])
        if "chargingProfilePurpose" in payload:
            profiles = profiles.filter(purpose=payload["chargingProfilePurpose"])
        if "stackLevel" in payload:
            profiles = profiles.filter(stack_level=payload["stackLevel"])
        profiles.delete()


REPLY_GRACE = 5.0  # how long past its timeout a caller waits for the holding process's own final answer


def reply_body(*, status: str, response: dict[str, Any] | None = None, error: str = "") -> str:
    """What the process holding the socket pushes to the caller, once it has recorded the result."""
    return json.dumps({"status": status, "response": response, "error": error}, default=str)


async def send_command_async(
    *,
    charge_point: ChargePoint,
    action: str,
    payload: dict[str, Any],
    requested_by: Any = None,
    timeout: float = DEFAULT_COMMAND_TIMEOUT,
    source: str = "system",
    record_payload: dict[str, Any] | None = None,
) -> Command:
    """Send one OCPP CALL to a charger wherever its socket is, wait for the answer, return the Command.

    Raises InvalidCommand (400, nothing recorded or sent) for a payload that is wrong for the 1.6 schema, the
    specification or this charger, and ChargePointOffline (nothing sent, command stored as offline) when no
    process holds the socket. Otherwise the returned command is final: accepted / rejected / error (CallError) /
    timeout, as committed. Commands to one charger are queued by its consumer (one outstanding CALL per charger,
    OCPP-J rule), so `timeout` includes the time spent waiting behind earlier commands.
    """
    command = await sync_to_async(_command_prepare)(
        charge_point=charge_point,
        action=action,
        payload=payload,
        record_payload=record_payload,
        requested_by=requested_by,
        source=source,
    )
    presence = await dispatch.presence_get_async(charge_point.identity)
    if presence is None:
        await sync_to_async(command_record_result)(
            command_id=command.pk, status=CommandStatus.OFFLINE, error="Charge point not connected."
        )
        raise ChargePointOffline(charge_point.identity)
    reply_to = dispatch.reply_key(command.pk)
    delivered = await dispatch.deliver(
        charge_point.identity,
        presence,
        {
            "type": "ocpp.command",
            "command_id": command.pk,
            "action": action,
            "payload": payload,
            "record_payload": record_payload,
            "reply_to": reply_to,
            "deadline": time.time() + timeout,
        },
    )
    if not delivered:  # the consumer's queue is full: it is not reading; nothing was sent
        await sync_to_async(command_record_result)(
            command_id=command.pk, status=CommandStatus.ERROR, error="Not sent: the charger's connection is stuck."
        )
        return await sync_to_async(Command.objects.get)(pk=command.pk)
    # The holding process gives up on the charger at the deadline and answers; the grace covers its own
    # recording. Without any answer by then (that process died) the command timed out.
    answer = await dispatch.reply_wait(reply_to, timeout + REPLY_GRACE)
    return await sync_to_async(_command_settle)(command_id=command.pk, answer=answer, payload=payload, timeout=timeout)


def _command_settle(*, command_id: int, answer: bytes | None, payload: dict[str, Any], timeout: float) -> Command:
    """The command as committed. The holding process records the result before it answers; should its write
    have failed, the result it sent along is recorded here (once: `command_record_result` keeps the first)."""
    command = Command.objects.select_related("charge_point").get(pk=command_id)
    if command.status in COMMAND_FINAL:
        return command
    if answer is None:
        command_record_result(
            command_id=command_id, status=CommandStatus.TIMEOUT, error=f"No answer within {timeout:g} s."
        )
    else:
        result = json.loads(answer)
        command_record_result(
            command_id=command_id,
            status=result["status"],
            response=result.get("response"),
            error=result.get("error") or "",
            request_payload=payload,
        )
    return Command.objects.select_related("charge_point").get(pk=command_id)


def send_command(
    *,
    charge_point: ChargePoint,
    action: str,
    payload: dict[str, Any],
    requested_by: Any = None,
    timeout: float = DEFAULT_COMMAND_TIMEOUT,
    source: str = "system",
    record_payload: dict[str, Any] | None = None,
) -> Command:
    """Sync wrapper of `send_command_async` for views, admin actions and Celery tasks.

    Must not run inside a transaction: the process holding the socket records the answer on the command
    row, which it can only see once it is committed.
    """
    if connection.in_atomic_block:
        raise RuntimeError("send_command waits for a charger: call it outside transaction.atomic().")
    return async_to_sync(send_command_async)(
        charge_point=charge_point,
        action=action,
        payload=payload,
        requested_by=requested_by,
        timeout=timeout,
        source=source,
        record_payload=record_payload,
    )


# --------------------------------------------------------------------------- firmware campaigns


@transaction.atomic
def firmware_campaign_create(
    *,
    tenant: Tenant,
    name: str,
    firmware: FirmwareImage,
    charge_points: Iterable[ChargePoint],
    retrieve_at: datetime | None = None,
    signed: bool = False,
    created_by: Any = None,
) -> FirmwareCampaign:
    targets = list(charge_points)
    if firmware.tenant_id != tenant.pk or any(cp.tenant_id != tenant.pk for cp in targets):
        raise ApplicationError("Firmware and chargers of a campaign must belong to its tenant.", code="cross_tenant")
    campaign = FirmwareCampaign.objects.create(
        tenant=tenant,
        name=name,
        firmware=firmware,
        retrieve_at=retrieve_at or timezone.now(),
        signed=signed,
        created_by=created_by if getattr(created_by, "pk", None) else None,
    )
    FirmwareCampaignTarget.objects.bulk_create(
        [FirmwareCampaignTarget(campaign=campaign, charge_point=cp) for cp in targets]
    )
    return campaign


def firmware_campaign_run(*, campaign: FirmwareCampaign, base_url: str, timeout: float = 30) -> None:
    """Send UpdateFirmware (or SignedUpdateFirmware) to every pending target (Celery task); progress follows the
    (Signed)FirmwareStatusNotifications. A signed campaign first makes sure each charger holds the tenant's CA
    as its ManufacturerRootCertificate (InstallCertificate), against which it checks the signing certificate."""
    from apps.stations import security

    firmware = campaign.firmware
    location = f"{base_url.rstrip('/')}/ocpp-files/firmware/{firmware.token}/"
    location += (firmware.file.name or "firmware.bin").rsplit("/", 1)[-1]
    retrieve = campaign.retrieve_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if campaign.signed:
        firmware = security.firmware_image_sign(image_id=firmware.pk)
    targets = campaign.targets.select_related("charge_point").filter(state=FirmwareCampaignTarget.State.PENDING)
    for target in targets:
        cp = target.charge_point
        try:
            if campaign.signed:
                refusal = security.manufacturer_root_ensure(charge_point=cp, timeout=timeout)
                if refusal:
                    FirmwareCampaignTarget.objects.filter(pk=target.pk).update(
                        state=FirmwareCampaignTarget.State.REFUSED, detail=refusal[:200]
                    )
                    continue
                action = "SignedUpdateFirmware"
                payload: dict[str, Any] = {
                    "requestId": target.pk,  # SignedFirmwareStatusNotification names the target by it
                    "firmware": {
                        "location": location,
                        "retrieveDateTime": retrieve,
                        "signingCertificate": firmware.signing_certificate,
                        "signature": firmware.signature,
                    },
                }
            else:
                action, payload = "UpdateFirmware", {"location": location, "retrieveDate": retrieve}
            command = send_command(
                charge_point=cp,
                action=action,
                payload=payload,
                timeout=timeout,
                source="campaign",
                requested_by=campaign.created_by,
            )
        except (ChargePointOffline, InvalidCommand) as error:
            FirmwareCampaignTarget.objects.filter(pk=target.pk).update(
                state=FirmwareCampaignTarget.State.REFUSED, detail=error.message[:200]
            )
            continue
        answer = (command.response or {}).get("status")  # SignedUpdateFirmware: InvalidCertificate, ...
        FirmwareCampaignTarget.objects.filter(pk=target.pk).update(
            command=command,
            detail=(command.error or (f"{command.status}: {answer}" if answer else command.status))[:200],
        )
        # a status notification may have moved it on already (the charger reports as soon as it answered)
        FirmwareCampaignTarget.objects.filter(pk=target.pk, state=FirmwareCampaignTarget.State.PENDING).update(
            state=FirmwareCampaignTarget.State.SENT
            if command.status == CommandStatus.ACCEPTED
            else FirmwareCampaignTarget.State.REFUSED,
        )


def diagnostics_location(*, token: str, base_url: str | None = None) -> str:
    """Where a charger uploads a diagnostics file for the platform (GetDiagnostics.location)."""
    return f"{(base_url or settings.OCPP_FILES_BASE_URL).rstrip('/')}/ocpp-files/diagnostics/{token}/"


def log_request(
    *,
    charge_point: ChargePoint,
    payload: dict[str, Any],
    requested_by: Any = None,
    base_url: str | None = None,
    timeout: float = DEFAULT_COMMAND_TIMEOUT,
    source: str = "system",
) -> tuple[DiagnosticsUpload | None, Command]:
    """GetLog (security whitepaper). Without `log.remoteLocation` the charger uploads to the platform (an upload
    slot like GetDiagnostics', with the log type and request id); with one, it is sent as given."""
    log = dict(payload.get("log") or {})
    if log.get("remoteLocation"):
        return None, send_command(
            charge_point=charge_point,
            action="GetLog",
            payload=payload,
            requested_by=requested_by,
            timeout=timeout,
            source=source,
        )
    placeholder = {**payload, "log": {**log, "remoteLocation": diagnostics_location(token="0" * 32, base_url=base_url)}}
    command_validate(charge_point=charge_point, action="GetLog", payload=placeholder)
    upload = DiagnosticsUpload.objects.create(
        tenant_id=charge_point.tenant_id,
        charge_point=charge_point,
        log_type=str(payload.get("logType", "")),
        request_id=payload.get("requestId"),
    )
    wire = {**payload, "log": {**log, "remoteLocation": diagnostics_location(token=upload.token, base_url=base_url)}}
    command = send_command(
        charge_point=charge_point,
        action="GetLog",
        payload=wire,
        requested_by=requested_by,
        timeout=timeout,
        source=source,
    )
    DiagnosticsUpload.objects.filter(pk=upload.pk).update(command=command)
    upload.command = command
    return upload, command


def diagnostics_request(
    *,
    charge_point: ChargePoint,
    requested_by: Any = None,
    base_url: str | None = None,
    timeout: float = DEFAULT_COMMAND_TIMEOUT,
    source: str = "system",
    **options: Any,
) -> tuple[DiagnosticsUpload, Command]:
    """GetDiagnostics with an upload location served by the platform (options: retries, startTime, ...).
    Invalid options are refused before the upload slot is created."""
    command_validate(
        charge_point=charge_point,
        action="GetDiagnostics",
        payload={"location": diagnostics_location(token="0" * 32, base_url=base_url), **options},
    )
    upload = diagnostics_request_create(charge_point=charge_point)
    command = send_command(
        charge_point=charge_point,
        action="GetDiagnostics",
        payload={"location": diagnostics_location(token=upload.token, base_url=base_url), **options},
        requested_by=requested_by,
        timeout=timeout,
        source=source,
    )
    DiagnosticsUpload.objects.filter(pk=upload.pk).update(command=command)
    upload.command = command
    return upload, command


# --------------------------------------------------------------------------- partner stations (eMSP role: receivers)
# Another CPO's locations as received over OCPI (push to our locations Receiver, or pulled from its Sender). The
# adapter (apps/roaming/ocpi/emsp_receivers.py) validates the wire object and hands over these dataclasses; every
# write here compares `last_updated` and never lets an older object overwrite a newer one (OCPI has no ordering
# guarantee between pushes, pulls and retries: the newest state the CPO sent wins), and drops the tenant's cached
# station search on commit (`stations_changed`), so an EVSE status change shows in the driver search at once.


@dataclass(frozen=True)
class PartnerConnectorData:
    connector_id: str
    fields: dict[str, Any]  # standard, format, power_type, max_voltage, max_amperage, max_electric_power, tariff_ids
    data: dict[str, Any]
    last_updated: datetime


@dataclass(frozen=True)
class PartnerEvseData:
    uid: str
    fields: dict[str, Any]  # evse_id, status, capabilities, physical_reference
    data: dict[str, Any]  # the EVSE object without its connectors
    last_updated: datetime
    connectors: list[PartnerConnectorData]


@dataclass(frozen=True)
class PartnerLocationData:
    country_code: str
    party_id: str
    ocpi_id: str
    fields: dict[str, Any]  # publish, name, address, city, ..., latitude, longitude, time_zone, operator_name
    data: dict[str, Any]  # the Location object without its EVSEs
    last_updated: datetime
    evses: list[PartnerEvseData]


class PartnerObjectUnknown(NotFound):
    """The location (or its EVSE, or connector) a partner's update names was never received."""

    def __init__(self, what: str) -> None:
        super().__init__(f"Unknown {what}.", code="partner_object_unknown")


def partner_object_lock(kind: str, *key: object) -> None:
    """Writers of one partner object (a location, tariff, session: `kind` and its OCPI key) go one at a time until
    their transaction ends, so a push and a pull (or two retries) that both find no row cannot collide on the unique
    key: the second finds the first's row and compares last_updated."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", [f"partner.{kind}", ":".join(map(str, key))]
        )


def _partner_location_locked(partner_id: int, country_code: str, party_id: str, ocpi_id: str) -> PartnerLocation | None:
    partner_object_lock("location", partner_id, country_code, party_id, ocpi_id)
    return (
        PartnerLocation.objects.select_for_update()
        .filter(partner_id=partner_id, country_code=country_code, party_id=party_id, ocpi_id=ocpi_id)
        .first()
    )


def _touch_parent(row: Any, last_updated: datetime) -> None:
    """OCPI: a child's update sets the parent's last_updated too (never backwards)."""
    if row.last_updated < last_updated:
        type(row).objects.filter(pk=row.pk).update(last_updated=last_updated)
        row.last_updated = last_updated


def _connector_write(evse: PartnerEvse, data: PartnerConnectorData) -> bool:
    existing = PartnerConnector.objects.select_for_update().filter(evse=evse, connector_id=data.connector_id).first()
    if existing is not None and existing.last_updated > data.last_updated:
        return False
    PartnerConnector.objects.update_or_create(
        evse=evse,
        connector_id=data.connector_id,
        defaults={**data.fields, "data": data.data, "last_updated": data.last_updated},
    )
    return True


def _evse_write(location: PartnerLocation, data: PartnerEvseData, *, connectors_given: bool = True) -> bool:
    existing = PartnerEvse.objects.select_for_update().filter(location=location, uid=data.uid).first()
    if existing is not None and existing.last_updated > data.last_updated:
        return False
    evse, _ = PartnerEvse.objects.update_or_create(
        location=location,
        uid=data.uid,
        defaults={**data.fields, "data": data.data, "last_updated": data.last_updated},
    )
    if connectors_given:
        for connector in data.connectors:
            _connector_write(evse, connector)
        PartnerConnector.objects.filter(evse=evse).exclude(
            connector_id__in=[c.connector_id for c in data.connectors]
        ).delete()
    return True


def _assign(row: PartnerEvse | PartnerConnector, values: dict[str, Any], now: datetime, seen: set[str]) -> None:
    """Set a row's fields for a bulk write (`updated_at` too: bulk_update does not), noting which were set."""
    for name, value in values.items():
        setattr(row, name, value)
        seen.add(name)
    row.updated_at = now


def _evses_replace(location: PartnerLocation, evses: list[PartnerEvseData]) -> None:
    """The location's EVSEs and connectors become `evses` (a PUT of the whole Location): per EVSE and connector the
    same rule as `_evse_write`/`_connector_write` (an object older than its stored row is left alone, its connectors
    with it), written in a fixed number of statements whatever the count (read both levels, bulk insert what is new,
    bulk update what is newer, delete what is no longer listed). Measured on the 2-core machine (benchmarks/
    partner_search_bench.py --pull): a full pull of 10,000 locations with 5 EVSEs each went from 89 ms a location
    (one update_or_create per row, ~70 statements) to 20 ms (50 locations/s, 252 EVSEs/s)."""
    now = timezone.now()
    stored = {e.uid: e for e in PartnerEvse.objects.select_for_update().filter(location=location)}
    written: list[tuple[PartnerEvse, PartnerEvseData]] = []
    new_evses: list[PartnerEvse] = []
    changed_evses: list[PartnerEvse] = []
    evse_fields: set[str] = set()
    for data in evses:
        evse = stored.get(data.uid)
        if evse is not None and evse.last_updated > data.last_updated:
            continue
        if evse is None:
            evse = PartnerEvse(location=location, uid=data.uid)
            new_evses.append(evse)
        else:
            changed_evses.append(evse)
        _assign(evse, {**data.fields, "data": data.data, "last_updated": data.last_updated}, now, evse_fields)
        written.append((evse, data))
    PartnerEvse.objects.bulk_create(new_evses)
    if changed_evses:
        PartnerEvse.objects.bulk_update(changed_evses, [*sorted(evse_fields), "updated_at"])
    connectors: dict[tuple[int, str], PartnerConnector] = {
        (c.evse_id, c.connector_id): c
        for c in PartnerConnector.objects.select_for_update().filter(evse__in=[e for e, _ in written if e.pk])
    }
    new_connectors: list[PartnerConnector] = []
    changed_connectors: list[PartnerConnector] = []
    connector_fields: set[str] = set()
    gone = Q(pk__in=[])
    for evse, data in written:
        for item in data.connectors:
            connector = connectors.get((evse.pk, item.connector_id))
            if connector is not None and connector.last_updated > item.last_updated:
                continue
            if connector is None:
                connector = PartnerConnector(evse=evse, connector_id=item.connector_id)
                new_connectors.append(connector)
            else:
                changed_connectors.append(connector)
            values = {**item.fields, "data": item.data, "last_updated": item.last_updated}
            _assign(connector, values, now, connector_fields)
        gone |= Q(evse=evse) & ~Q(connector_id__in=[c.connector_id for c in data.connectors])
    PartnerConnector.objects.bulk_create(new_connectors)
    if changed_connectors:
        PartnerConnector.objects.bulk_update(changed_connectors, [*sorted(connector_fields), "updated_at"])
    if changed_evses:
        PartnerConnector.objects.filter(gone).delete()
    PartnerEvse.objects.filter(location=location).exclude(uid__in=[e.uid for e in evses]).delete()


@transaction.atomic
def partner_location_put(
    *, tenant_id: int, partner_id: int, location: PartnerLocationData, evses_given: bool = True
) -> tuple[PartnerLocation, bool]:
    """Create or replace a partner's location (with its EVSEs and connectors when `evses_given`: those not listed any
    more are deleted, the object is replaced). Returns the row and whether it was applied: a location older than
    the stored one changes nothing (the same for each EVSE and connector against its own row)."""
    key = (partner_id, location.country_code, location.party_id, location.ocpi_id)
    existing = _partner_location_locked(*key)
    if existing is not None and existing.last_updated > location.last_updated:
        return existing, False
    values = {**location.fields, "data": location.data, "last_updated": location.last_updated}
    if existing is None:  # the row was looked for under the object's lock: create, without update_or_create's savepoint
        row = PartnerLocation.objects.create(
            tenant_id=tenant_id,
            partner_id=partner_id,
            country_code=location.country_code,
            party_id=location.party_id,
            ocpi_id=location.ocpi_id,
            **values,
        )
    else:
        row = existing
        for name, value in values.items():
            setattr(row, name, value)
        row.save()
    if evses_given:
        _evses_replace(row, location.evses)
    stations_changed(tenant_id=tenant_id)
    return row, True


@transaction.atomic
def partner_evse_put(
    *,
    tenant_id: int,
    partner_id: int,
    country_code: str,
    party_id: str,
    location_id: str,
    evse: PartnerEvseData,
    connectors_given: bool = True,
) -> bool:
    """Create or replace one EVSE of a partner location (PartnerObjectUnknown when the location is not here); the
    location's last_updated follows. False: older than the stored EVSE, nothing changed."""
    location = _partner_location_locked(partner_id, country_code, party_id, location_id)
    if location is None:
        raise PartnerObjectUnknown(f"location {country_code}/{party_id}/{location_id}")
    if not _evse_write(location, evse, connectors_given=connectors_given):
        return False
    _touch_parent(location, evse.last_updated)
    stations_changed(tenant_id=tenant_id)
    return True


@transaction.atomic
def partner_connector_put(
    *,
    tenant_id: int,
    partner_id: int,
    country_code: str,
    party_id: str,
    location_id: str,
    evse_uid: str,
    connector: PartnerConnectorData,
) -> bool:
    """Create or replace one connector of a partner EVSE; the EVSE's and location's last_updated follow."""
    location = _partner_location_locked(partner_id, country_code, party_id, location_id)
    if location is None:
        raise PartnerObjectUnknown(f"location {country_code}/{party_id}/{location_id}")
    evse = PartnerEvse.objects.select_for_update().filter(location=location, uid=evse_uid).first()
    if evse is None:
        raise PartnerObjectUnknown(f"EVSE {evse_uid} of location {location_id}")
    if not _connector_write(evse, connector):
        return False
    _touch_parent(evse, connector.last_updated)
    _touch_parent(location, connector.last_updated)
    stations_changed(tenant_id=tenant_id)
    return True


@transaction.atomic
def partner_locations_unlisted_removed(*, tenant_id: int, partner_id: int, keep: set[tuple[str, str, str]]) -> int:
    """After a full resync: the partner's locations it no longer lists, (country_code, party_id, ocpi_id) not in
    `keep`, get every EVSE set to REMOVED (OCPI never deletes a location; REMOVED is how a CPO withdraws an EVSE),
    so no driver is sent there; they come back with the CPO's next PUT. Returns how many locations."""
    rows = PartnerLocation.objects.filter(partner_id=partner_id).values_list(
        "pk", "country_code", "party_id", "ocpi_id"
    )
    gone = [pk for pk, cc, pid, oid in rows if (cc, pid, oid) not in keep]
    evses = PartnerEvse.objects.select_for_update().filter(location_id__in=gone).exclude(status="REMOVED")
    changed = False
    for evse in evses.order_by("pk"):
        evse.status = "REMOVED"
        evse.data = {**evse.data, "status": "REMOVED"}
        evse.save(update_fields=["status", "data", "updated_at"])
        changed = True
    if changed:
        stations_changed(tenant_id=tenant_id)
    return len(gone)


@transaction.atomic
def partner_evse_statuses_set(
    *, tenant_id: int, partner_id: int, statuses: dict[str, str], key: Callable[[str], str] = str
) -> int:
    """Many partner EVSEs' statuses at once (a roaming hub's status pull): `statuses` maps `key(evse_id)` to an OCPI
    Status; EVSEs of the partner whose status differs are updated in one statement per status. Returns how many."""
    now = timezone.now()
    changed: dict[str, list[int]] = {}
    rows = PartnerEvse.objects.filter(location__partner_id=partner_id, location__tenant_id=tenant_id)
    for pk, evse_id, current in rows.values_list("pk", "evse_id", "status"):
        wanted = statuses.get(key(evse_id))
        if wanted is not None and wanted != current and wanted in PartnerEvseStatus.values:
            changed.setdefault(wanted, []).append(pk)
    for status, pks in changed.items():
        PartnerEvse.objects.filter(pk__in=pks).update(status=status, last_updated=now, updated_at=now)
    if changed:
        stations_changed(tenant_id=tenant_id)
    return sum(len(pks) for pks in changed.values())


# --------------------------------------------------------------------------- partner EVSE status (eMSP search slice)
# The receivers slice owns the writes of partner locations/EVSEs/connectors; this one service is the status change
# the driver search depends on (its cache). The OCPI locations Receiver calls it for an EVSE status PATCH.


@transaction.atomic
def partner_evse_status_set(*, evse: PartnerEvse, status: str, last_updated: datetime | None = None) -> PartnerEvse:
    """A partner EVSE's OCPI Status as the CPO reports it; the tenant's cached station search drops on commit."""
    if status not in PartnerEvseStatus.values:
        raise ApplicationError(f"Unknown EVSE status {status!r}.", code="invalid_status")
    stamp = last_updated or timezone.now()
    evse = PartnerEvse.objects.select_for_update().get(pk=evse.pk)
    evse.status, evse.last_updated = status, stamp
    evse.data = {**evse.data, "status": status, "last_updated": stamp.isoformat()}  # what our Receiver's GET answers
    evse.save(update_fields=["status", "last_updated", "data", "updated_at"])
    tenant_id = PartnerLocation.objects.filter(pk=evse.location_id).values_list("tenant_id", flat=True).get()
    stations_changed(tenant_id=tenant_id)
    return evse
