"""Reads of the roaming partner registry."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.roaming.models import HubClientInfo, RoamingPartner, token_hash


def partner_list() -> QuerySet[RoamingPartner]:
    return RoamingPartner.objects.select_related("tenant")


def partner_by_token(token: str) -> RoamingPartner | None:
    """The partner whose current token of ours this is (one indexed lookup of its SHA-256)."""
    if not token:
        return None
    return partner_list().filter(our_token_hash=token_hash(token)).first()


def hub_client_parties(*, partner_id: int) -> set[tuple[str, str]]:
    """The (country_code, party_id) pairs a hub partner announced behind it (hubclientinfo), whatever their status."""
    return set(HubClientInfo.objects.filter(partner_id=partner_id).values_list("country_code", "party_id"))
