"""OCPI 2.2.1 hubclientinfo module, Receiver interface (mod_hub_client_info): a hub partner tells us which parties
are behind it and their connection status, `{hubclientinfo}/{country_code}/{party_id}` with GET and PUT (ClientInfo
objects are never deleted: a withdrawn party comes as SUSPENDED).

Only a partner registered with the role HUB sends them (others: 404). What a hub announces decides which parties it
may relay (routing headers OCPI-from-*, transport._routing) and send objects of (emsp_receivers.parties_of); while it
announced none, any party is taken from it. The official example has no last_updated: a ClientInfo without one is
stamped with the time we received it; an older one than stored changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpResponse
from django.utils import timezone

from apps.roaming import services
from apps.roaming.models import ConnectionStatus, HubClientInfo, Role
from apps.roaming.ocpi import fields as f
from apps.roaming.ocpi.transport import CLIENT_ERROR, INVALID_PARAMETERS, OcpiError, OcpiRequest, envelope, ocpi_view

_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_PARTY = re.compile(r"^[A-Za-z0-9]{3}$")
ROLES = tuple(r.value for r in Role)
STATUSES = tuple(s.value for s in ConnectionStatus)


def parse_client_info(body: Any, prefix: str = "client_info") -> services.ClientInfoData:
    obj = f.as_object(body, prefix)
    country_code = f.cistring(obj, "country_code", prefix, 2)
    party_id = f.cistring(obj, "party_id", prefix, 3)
    assert country_code is not None
    assert party_id is not None
    if not _COUNTRY.match(country_code):
        raise f.invalid(f"{prefix}.country_code", f"{country_code!r} is not an ISO 3166-1 alpha-2 country code.")
    if not _PARTY.match(party_id):
        raise f.invalid(f"{prefix}.party_id", f"{party_id!r} is not a 3-character party id.")
    role = f.enum(obj, "role", prefix, ROLES)
    status = f.enum(obj, "status", prefix, STATUSES)
    last_updated = f.datetime(obj, "last_updated", prefix, required=False)
    if last_updated is None:
        last_updated = timezone.now().replace(microsecond=0)
        obj = {**obj, "last_updated": last_updated.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert role is not None
    assert status is not None
    return services.ClientInfoData(
        country_code=country_code.upper(),
        party_id=party_id.upper(),
        role=role,
        status=status,
        data=obj,
        last_updated=last_updated,
    )


@ocpi_view(methods=["GET", "PUT"], module="hubclientinfo", functional=True)
def client_info(ocpi: OcpiRequest, country_code: str, party_id: str) -> HttpResponse:
    f.segment(country_code, "country_code", 2)
    f.segment(party_id, "party_id", 3)
    partner = ocpi.partner
    if Role.HUB not in (partner.roles or []):
        raise OcpiError(CLIENT_ERROR, "Only a hub sends ClientInfo: you are not registered as one.", http_status=404)
    party = (country_code.upper(), party_id.upper())
    if ocpi.http.method == "GET":
        found = HubClientInfo.objects.filter(partner=partner, country_code=party[0], party_id=party[1]).first()
        if found is None:
            raise OcpiError(CLIENT_ERROR, f"Unknown ClientInfo {party[0]}/{party[1]}.", http_status=404)
        return envelope(ocpi.http, found.data)
    info = parse_client_info(ocpi.json_body())
    if (info.country_code, info.party_id) != party:
        raise OcpiError(
            INVALID_PARAMETERS,
            f"client_info.country_code/party_id {info.country_code}/{info.party_id} differ from the URL's "
            f"{country_code}/{party_id}.",
        )
    _, applied = services.hub_client_info_put(partner_id=partner.pk, info=info)
    return envelope(ocpi.http, None, message="Success" if applied else "Older than what we hold: kept the newer.")
