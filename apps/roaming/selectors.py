"""Reads of the roaming partner registry."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.roaming.models import RoamingPartner, token_hash


def partner_list() -> QuerySet[RoamingPartner]:
    return RoamingPartner.objects.select_related("tenant")


def partner_by_token(token: str) -> RoamingPartner | None:
    """The partner whose current token of ours this is (one indexed lookup of its SHA-256)."""
    if not token:
        return None
    return partner_list().filter(our_token_hash=token_hash(token)).first()
