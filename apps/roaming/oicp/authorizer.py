"""The Hubject roaming authorizer (`settings.ROAMING_AUTHORIZERS`, after the OCPI one): a card our chargers do not
know, that no OCPI partner knows either, is asked of Hubject (AuthorizeStart, we are CPO), which answers from the
EMPs' authentication data or asks the EMP the card belongs to.

Authorized: the card is cached as a roaming token of the Hubject partner (whitelist NEVER: every start is asked
again), the session starts with Hubject's SessionID as its `authorization_reference`, and the start is recorded like
a Hubject remote start (a `RoamingCommand` of module `oicp`), so the session's ChargeDetailRecord goes back to
Hubject when it ends (`inbound.cdr_send`). NotAuthorized: refused (Invalid, with Hubject's StatusCode as reason).
Hubject unreachable or the connection not allowed to ask: no answer (None), and the customers layer refuses.

A card we do not know shown where a session Hubject authorized runs for another card is first asked as a stop
(AuthorizeStop): the charger asks before it stops a transaction for a different idTag, and stops it when the two
cards share a parentIdTag (OCPP 1.6), so a Hubject card is its own group and the stopping card gets the starting one.

OICP identifies a card by its RFID UID (8, 14 or 20 hex digits); an idTag that is not one cannot be asked."""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from apps.customers import selectors as customer_selectors
from apps.customers.authorization import AuthorizationStatus, RoamingAuthorization, RoamingToken
from apps.customers.models import TokenSource, TokenType, WhitelistType
from apps.roaming.models import CommandType, OicpConnection, OicpOperation, RoamingCommand
from apps.roaming.oicp.client import OicpCallFailed, OicpClient, OicpDisabled
from apps.roaming.oicp.services import HUBJECT, HUBJECT_PARTY
from apps.sessions.models import RUNNING_STATUSES, ChargingSession
from apps.stations.models import Evse
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

UID = re.compile(r"^([0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20})$")
MODULE = "oicp"
AUTHORIZATION_HOLDS = dt.timedelta(minutes=15)
STOP_CANDIDATES = 4  # running Hubject sessions at one location asked about a stop card, at most


def _connection(tenant: Tenant) -> OicpConnection | None:
    return (
        OicpConnection.objects.filter(
            tenant=tenant, enabled=True, enabled_operations__contains=[OicpOperation.AUTHORIZE_START]
        )
        .exclude(operator_id="")
        .select_related("partner")
        .first()
    )


def _evse_id(location_id: Any | None, connector_id: int | None) -> str:
    """The EvseID Hubject knows at this location (the connector's, when the charger said which)."""
    if location_id is None:
        return ""
    evses = Evse.objects.filter(charge_point__location_id=location_id).exclude(evse_uid="")
    if connector_id is not None:
        evses = evses.filter(connector_id=connector_id)
    ids = list(evses.values_list("evse_uid", flat=True)[:2])
    return ids[0] if len(ids) == 1 else ""


def _recently_authorized(tenant: Tenant, id_tag: str, at: dt.datetime) -> str:
    """Hubject's SessionID when Hubject authorized this card in the last 15 minutes (a remote start, an earlier
    AuthorizeStart) for a session that has not been charged yet; empty otherwise. The EMP authorized it: the CPO does
    not ask again (and the session keeps that SessionID, so its CDR finds the EMP)."""
    recent = (
        RoamingCommand.objects.filter(
            partner__tenant=tenant,
            module=MODULE,
            command=CommandType.START_SESSION,
            created_at__gte=at - AUTHORIZATION_HOLDS,
            request__token__uid__iexact=id_tag,
        )
        .order_by("-pk")
        .first()
    )
    session_id = str((recent.target or {}).get("session_id") or "") if recent is not None else ""
    if not session_id:
        return ""
    used = ChargingSession.objects.filter(
        tenant=tenant, authorization_reference=session_id, stopped_at__isnull=False
    ).exists()
    return "" if used else session_id


def _stop(
    connection: OicpConnection, id_tag: str, identification: dict[str, Any], location_id: Any | None
) -> RoamingAuthorization | None:
    """AuthorizeStop: a card we do not know, shown at a location where a session Hubject authorized runs for another
    card (the charger asks before it stops a transaction for a different idTag). Authorized: Accepted with the
    starting card as parentIdTag, so the charger (OCPP 1.6: same parentIdTag) stops that session. None otherwise
    (not such a card, or Hubject says no: it is then asked as a start)."""
    if location_id is None:
        return None
    running = (
        ChargingSession.objects.filter(
            tenant_id=connection.tenant_id,
            charge_point__location_id=location_id,
            roaming_partner=HUBJECT,
            status__in=RUNNING_STATUSES,
        )
        .exclude(id_tag__iexact=id_tag)
        .exclude(authorization_reference="")
        .order_by("pk")[:STOP_CANDIDATES]
    )
    for session in running:
        body: dict[str, Any] = {
            "OperatorID": connection.operator_id,
            "SessionID": session.authorization_reference,
            "Identification": identification,
        }
        evse_id = _evse_id(location_id, session.connector_id)
        if evse_id:
            body["EvseID"] = evse_id
        client = OicpClient(connection)
        try:
            answer = client.call(OicpOperation.AUTHORIZE_STOP, body)
        except (OicpCallFailed, OicpDisabled) as error:
            logger.warning("AuthorizeStop of %s at Hubject failed: %s", id_tag, error)
            continue
        finally:
            client.close()
        if answer.get("AuthorizationStatus") == "Authorized":
            return RoamingAuthorization(
                status=AuthorizationStatus.ACCEPTED,
                reason="hubject_stop",
                token=RoamingToken(
                    uid=id_tag,
                    contract_id="",
                    issuer=str(answer.get("ProviderID") or "Hubject"),
                    country_code=HUBJECT_PARTY[0],
                    party_id=HUBJECT_PARTY[1],
                    type=TokenType.RFID,
                    group_id=session.id_tag,
                    whitelist=WhitelistType.NEVER,
                ),
            )
    return None


class OicpAuthorizer:
    """A RoamingAuthorizer (apps.customers.authorization) over Hubject's AuthorizeStart."""

    def authorize(
        self, *, tenant: Tenant, id_tag: str, location_id: Any | None, at: dt.datetime
    ) -> RoamingAuthorization | None:
        token = customer_selectors.token_get(tenant=tenant, uid=id_tag)
        if token is not None and token.source != TokenSource.ROAMING:
            return None  # ours
        if token is not None and (token.country_code, token.party_id) != HUBJECT_PARTY:
            return None  # an OCPI partner's
        recent = _recently_authorized(tenant, id_tag, at)
        if recent:  # Hubject authorized it moments ago (a remote start, or the Authorize before StartTransaction)
            return RoamingAuthorization(
                status=AuthorizationStatus.ACCEPTED, reason="hubject", authorization_reference=recent
            )
        uid = id_tag.upper()
        if not UID.match(uid):
            return None
        connection = _connection(tenant)
        if connection is None:
            return None
        identification = {"RFIDMifareFamilyIdentification": {"UID": uid}}
        stop = _stop(connection, id_tag, identification, location_id)
        if stop is not None:
            return stop
        body: dict[str, Any] = {"OperatorID": connection.operator_id, "Identification": identification}
        evse_id = _evse_id(location_id, None)
        if evse_id:
            body["EvseID"] = evse_id
        client = OicpClient(connection)
        try:
            answer = client.call(OicpOperation.AUTHORIZE_START, body)
        except (OicpCallFailed, OicpDisabled) as error:
            logger.warning("AuthorizeStart of %s at Hubject failed: %s", uid, error)
            return None
        finally:
            client.close()
        code = str((answer.get("StatusCode") or {}).get("Code", ""))
        if answer.get("AuthorizationStatus") != "Authorized" or not answer.get("SessionID"):
            return RoamingAuthorization(status=AuthorizationStatus.INVALID, reason=f"hubject_{code or 'refused'}")
        session_id = str(answer["SessionID"])
        provider = str(answer.get("ProviderID") or "")
        RoamingCommand.objects.create(  # the session's CDR goes back to Hubject (inbound.hubject_session)
            partner=connection.partner,
            module=MODULE,
            command=CommandType.START_SESSION,
            request={
                "token": {"uid": id_tag},
                "oicp": {
                    "SessionID": session_id,
                    "ProviderID": provider,
                    "Identification": identification,
                    "EvseID": evse_id,
                    "EMPPartnerSessionID": answer.get("EMPPartnerSessionID") or "",
                },
            },
            target={"session_id": session_id},
            response_url="",
            state=RoamingCommand.State.DELIVERED,
            result=answer,
        )
        return RoamingAuthorization(
            status=AuthorizationStatus.ACCEPTED,
            reason="hubject",
            token=RoamingToken(
                uid=id_tag,
                contract_id="",
                issuer=provider or "Hubject",
                country_code=HUBJECT_PARTY[0],
                party_id=HUBJECT_PARTY[1],
                type=TokenType.RFID,
                group_id=id_tag,  # its own group: the charger stops its session for a card Hubject lets stop it
                whitelist=WhitelistType.NEVER,
            ),
            authorization_reference=session_id,
        )
