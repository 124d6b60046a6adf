"""What a StartTransaction means beyond the id tag: the session's links, its reservation, its contract limits.

Called by `services.session_start` inside its transaction, after the id tag was authorized:
- remote start: the handover of a remote start of this idTag on this charger (`remote_start_handover`: the
  session id reserved for it, the driver's charging preferences);
- links: token, driver, business customer, contract (the token's), the reservation's vehicle; a roaming token's
  eMSP party ("NL*TNM") as the session's roaming partner;
- reservation: a holding reservation of this charger (the connector or connector 0) is honoured when the
  charger names it (reservationId) or when the id tag (or its parent group) is the reservation's; a
  connector reserved for someone else refuses the start (idTagInfo Invalid, auth_reason connector_reserved);
- limits: the contract's max duration / energy and action are copied onto the session (what applied then);
- a decommissioned charger, location or EVSE refuses the start (idTagInfo Invalid, auth_reason decommissioned).
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q

from apps.customers import selectors as customer_selectors
from apps.customers.models import TokenSource, wire_id_for
from apps.sessions.models import (
    HOLDING_RESERVATION,
    ChargingSession,
    Reservation,
    ReservationStatus,
    StartPreferences,
)
from apps.sessions.services import IdTagInfo
from apps.stations.decommission import decommissioned_reason
from apps.stations.models import ChargePoint, Command

REMOTE_START_WINDOW = dt.timedelta(minutes=10)


def _matches(reservation: Reservation, session: ChargingSession, sent_id_tag: str, group_id: str) -> bool:
    """Is the reservation this driver's? Its token, or its idTag / parentIdTag (as sent to the charger: the wire
    forms; older rows hold the uid cut to 20) naming the tag or its group."""
    if reservation.token_id is not None and reservation.token_id == session.token_id:
        return True
    tags = {sent_id_tag.lower(), session.id_tag.lower()}
    if group_id:
        tags |= {group_id.lower(), wire_id_for(group_id).lower()}
    return reservation.id_tag.lower() in tags or (
        bool(reservation.parent_id_tag) and reservation.parent_id_tag.lower() in tags
    )


def holding_reservations(*, charge_point_id: int, connector_id: int, at: dt.datetime) -> list[Reservation]:
    """Reservations holding this connector (or the whole charger) at `at`, locked."""
    return list(
        Reservation.objects.select_for_update()
        .filter(
            charge_point_id=charge_point_id,
            status__in=HOLDING_RESERVATION,
            starts_at__lte=at,
            expires_at__gt=at,
        )
        .filter(Q(connector_id=connector_id) | Q(connector_id=0))
        .order_by("pk")
    )


def remote_start_handover(*, charge_point: ChargePoint, id_tag: str, at: dt.datetime) -> StartPreferences | None:
    """What a remote start of this idTag (as sent) on this charger left for its session: the latest not yet
    taken, within the remote-start window before the start, locked (a concurrent start skips it)."""
    return (
        StartPreferences.objects.select_for_update(skip_locked=True)
        .filter(
            charge_point=charge_point,
            id_tag__iexact=id_tag,
            session__isnull=True,
            created_at__gte=at - REMOTE_START_WINDOW,
        )
        .order_by("-created_at", "-pk")
        .first()
    )


def session_apply_start(
    *,
    session: ChargingSession,
    info: IdTagInfo,
    charge_point: ChargePoint,
    sent_id_tag: str,
    handover: StartPreferences | None = None,
) -> IdTagInfo:
    """`sent_id_tag` is the idTag as the charger sent it (a token's wire id or uid); `handover` what its remote
    start left (`remote_start_handover`)."""
    token = customer_selectors.token_get(tenant=charge_point.tenant, uid=sent_id_tag)
    group_id = ""
    if token is not None:
        group_id = token.group_id
        session.token = token
        session.driver_id = token.driver_id
        session.business_customer_id = customer_selectors.token_business_customer_id(token)
        if token.source == TokenSource.ROAMING and token.country_code and token.party_id:
            # a roaming partner's driver (its eMSP's party): the session, CDR, exports and analytics carry it
            session.roaming_partner = f"{token.country_code}*{token.party_id}"
        contract = token.business_contract
        if contract is not None:
            session.contract = contract
            session.limit_duration = contract.max_session_duration
            session.limit_energy_wh = contract.max_session_energy_wh
            if contract.max_session_duration or contract.max_session_energy_wh:
                session.limit_action = contract.limit_action
    remote = (
        handover is not None
        or Command.objects.filter(
            charge_point=charge_point,
            action="RemoteStartTransaction",
            payload__idTag=sent_id_tag,
            status="accepted",
            created_at__gte=session.started_at - REMOTE_START_WINDOW,
        ).exists()
    )
    session.auth_method = "COMMAND" if remote else "AUTH_REQUEST"
    if handover is not None:
        _take_start_preferences(session=session, handover=handover)
    if info.status == "Accepted" and decommissioned_reason(
        charge_point=charge_point, connector_id=session.connector_id
    ):
        session.auth_reason = "decommissioned"  # taken out of service: the charger is told to stop at once
        return IdTagInfo("Invalid", info.parent_id_tag, None)

    held = holding_reservations(
        charge_point_id=charge_point.pk, connector_id=session.connector_id, at=session.started_at
    )
    mine = [r for r in held if _matches(r, session, sent_id_tag, group_id)]
    named = [r for r in mine if session.reservation_id is not None and r.pk == session.reservation_id]
    chosen: Reservation | None = (named or mine)[0] if (named or mine) else None
    if chosen is not None and info.status == "Accepted":
        chosen.status = ReservationStatus.USED
        chosen.detail = f"used by session {session.pk}"
        chosen.save(update_fields=["status", "detail", "updated_at"])
        session.reservation_id = chosen.pk
        session.vehicle_id = chosen.vehicle_id
        session.driver_id = session.driver_id or chosen.driver_id
        return info
    # a reservationId the charger named but that holds nothing now (expired, cancelled, someone else's):
    # the session is not linked to it (it would claim a reservation it did not use, e.g. in the CDR)
    session.reservation_id = None
    others = [
        r for r in held if r.connector_id == session.connector_id and not _matches(r, session, sent_id_tag, group_id)
    ]
    if others and info.status == "Accepted":
        session.auth_reason = "connector_reserved"
        return IdTagInfo("Invalid", info.parent_id_tag, None)
    return info


def _take_start_preferences(*, session: ChargingSession, handover: StartPreferences) -> None:
    """The departure time and energy need given with the remote start become the session's; the row records
    which session took them."""
    session.departure_at = handover.departure_at
    session.energy_need_wh = handover.energy_need_wh
    if handover.authorization_reference:  # the eMSP's START_SESSION reference: the latest one given wins
        session.authorization_reference = handover.authorization_reference
    handover.session = session
    handover.save(update_fields=["session"])
