"""Event subscribers of roaming (listed in apps.core.events.SUBSCRIBERS): what changed on our network is pushed to
the partners that receive it (apps/roaming/ocpi/push.py), and to Hubject (apps/roaming/oicp/subscribers.py, called
from here: one outbox row per event for all of roaming). Idempotent: a repeated event bumps the object's version
again and the partner gets its current state once more."""

from __future__ import annotations

from apps.core import events
from apps.roaming import emsp_tokens
from apps.roaming.models import Module
from apps.roaming.ocpi import push
from apps.roaming.oicp import subscribers as oicp
from apps.sessions.models import Cdr, ChargingSession
from apps.stations.models import Evse


def connector_status_changed(event: events.ConnectorStatusChanged) -> None:
    """A StatusNotification: PATCH the EVSE's status to every partner receiving locations (connector 0, the charger
    itself, concerns each of its EVSEs)."""
    oicp.connector_status_changed(event)
    partners = push.receivers(tenant_id=event.tenant_id, module=Module.LOCATIONS)
    if not partners:
        return
    evses = Evse.objects.filter(charge_point_id=event.charge_point_id, charge_point__location__publish=True)
    if event.connector_id:
        evses = evses.filter(connector_id=event.connector_id)
    keys = [f"evse:{pk}" for pk in evses.order_by("pk").values_list("pk", flat=True)]
    push.changed(partners=partners, module=Module.LOCATIONS, keys=keys)


def connection_changed(event: events.ChargePointConnectionChanged) -> None:
    """A charger connected or went offline: its EVSEs' OCPI status follows (UNKNOWN while offline)."""
    connector_status_changed(
        events.ConnectorStatusChanged(
            tenant_id=event.tenant_id,
            charge_point_id=event.charge_point_id,
            connector_id=0,
            status="",
            error_code="",
            previous_status="",
            at=event.at,
        )
    )


def session_ended(event: events.SessionEnded) -> None:
    """A session of a partner's driver ended: PATCH the session's end, POST its CDR to that partner once (Hubject's
    sessions: the End notification and the ChargeDetailRecord)."""
    party = _party(event.tenant_id, event.session_id)
    oicp.session_ended(event, party)
    _session_changed(event.tenant_id, event.session_id, party, at_once=True)
    cdr = Cdr.objects.filter(session_id=event.session_id).select_related("session").first()
    if cdr is None or not cdr.session.roaming_partner:
        return
    party = cdr.session.roaming_partner
    partners = [p for p in push.receivers(tenant_id=event.tenant_id, module=Module.CDRS) if p.party == party]
    push.changed(partners=partners, module=Module.CDRS, keys=[f"cdr:{cdr.pk}"], once=True)


def _party(tenant_id: int, session_id: int) -> str:
    """The roaming party whose driver the session is (empty: our own driver's), read once per event."""
    party = (
        ChargingSession.objects.filter(pk=session_id, tenant_id=tenant_id)
        .values_list("roaming_partner", flat=True)
        .first()
    )
    return party or ""


def _session_changed(tenant_id: int, session_id: int, party: str, *, at_once: bool = False) -> None:
    if not party:
        return  # our own driver's session
    partners = [p for p in push.receivers(tenant_id=tenant_id, module=Module.SESSIONS) if p.party == party]
    push.changed(partners=partners, module=Module.SESSIONS, keys=[f"session:{session_id}"], at_once=at_once)


def session_started(event: events.SessionStarted) -> None:
    """PUT the new session of a partner's driver to that partner (Hubject's: the Start notification)."""
    party = _party(event.tenant_id, event.session_id)
    oicp.session_started(event, party)
    _session_changed(event.tenant_id, event.session_id, party)


def session_meter_updated(event: events.SessionMeterUpdated) -> None:
    """PATCH its kwh (throttled by the pusher: OCPI_SESSION_PUSH_INTERVAL; Hubject's: a Progress notification)."""
    party = _party(event.tenant_id, event.session_id)
    oicp.session_meter_updated(event, party)
    _session_changed(event.tenant_id, event.session_id, party)


def location_changed(event: events.LocationChanged) -> None:
    """A location was created or edited (publish toggled, decommissioned, a charger moved in or out): PUT the whole
    Location to every partner receiving locations (the pusher sends its state at that time)."""
    oicp.network_changed(event)
    partners = push.receivers(tenant_id=event.tenant_id, module=Module.LOCATIONS)
    push.changed(partners=partners, module=Module.LOCATIONS, keys=[f"location:{event.location_id}"])


def evse_changed(event: events.EvseChanged) -> None:
    """An EVSE or its connectors changed: PUT the EVSE; decommissioned: PATCH its status to REMOVED (mod_locations
    "Flow and Lifecycle": there is no DELETE)."""
    oicp.network_changed(event)
    partners = push.receivers(tenant_id=event.tenant_id, module=Module.LOCATIONS)
    key = f"evse:{event.evse_id}" if event.removed else f"evse-put:{event.evse_id}"
    push.changed(partners=partners, module=Module.LOCATIONS, keys=[key])


def tariff_changed(event: events.TariffChanged) -> None:
    """A tariff or its place on the network changed: each partner receiving tariffs gets a PUT when it sees the
    tariff, a DELETE when it was sent it and sees it no more (the pusher decides per partner)."""
    oicp.tariff_changed(event)  # Hubject: dynamic pricing
    partners = push.receivers(tenant_id=event.tenant_id, module=Module.TARIFFS)
    push.changed(partners=partners, module=Module.TARIFFS, keys=[f"tariff:{event.tariff_id}"])
    if event.placement:  # which tariff applies where changed: the locations name it on their connectors
        push.locations_resend(partners=push.receivers(tenant_id=event.tenant_id, module=Module.LOCATIONS))


# --------------------------------------------------------------------------- eMSP: our tokens to CPO partners

TOKEN_ROWS_PER_STATEMENT = 5000  # PushState rows per INSERT (4 parameters each: under PostgreSQL's 65,535)


def tokens_changed(event: events.TokensChanged) -> None:
    """Our tenant's tokens changed (created, edited, blocked, their account or contract, deleted): PUT each, in its
    state at push time, to every CPO partner we are eMSP for with a tokens Receiver; a deleted one is invalidated
    where it was sent (the pusher decides per token and partner)."""
    oicp.tokens_changed(event)  # Hubject: PushAuthenticationData
    partners = [
        p for p in push.receivers(tenant_id=event.tenant_id, module=Module.TOKENS) if emsp_tokens.serves_tokens(p)
    ]
    if not partners:
        return
    keys = [f"token:{pk}" for pk in event.token_ids]
    step = max(TOKEN_ROWS_PER_STATEMENT // len(partners), 1)
    for start in range(0, len(keys), step):
        push.changed(partners=partners, module=Module.TOKENS, keys=keys[start : start + step])
