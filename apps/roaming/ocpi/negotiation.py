"""Credentials objects and version negotiation (credentials.asciidoc, version_information_endpoint.asciidoc),
shared by both directions of the handshake."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from apps.roaming.models import RoamingPartner, Role
from apps.roaming.ocpi import client, transport

VERSION = "2.2.1"
ROLES = {r.value for r in Role}
INTERFACE_ROLES = {"SENDER", "RECEIVER"}
_TOKEN = re.compile(r"^[\x21-\x7e]{1,64}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_PARTY = re.compile(r"^[A-Za-z0-9]{3}$")


@dataclass(frozen=True)
class Credentials:
    token: str
    url: str
    roles: list[dict[str, Any]]


def _invalid(message: str) -> transport.OcpiError:
    return transport.OcpiError(transport.INVALID_PARAMETERS, message)


def parse_credentials(body: Any) -> Credentials:
    """A Credentials object as the spec defines it, or 2001 naming the first field that is wrong."""
    if not isinstance(body, dict):
        raise _invalid("The body must be a Credentials object.")
    token, url, roles = body.get("token"), body.get("url"), body.get("roles")
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise _invalid("token: string(64) of printable non-whitespace ASCII characters required.")
    if not isinstance(url, str) or not re.match(r"^https?://[^\s]+$", url) or len(url) > 255:
        raise _invalid("url: the URL of your versions endpoint is required.")
    if not isinstance(roles, list) or not roles:
        raise _invalid("roles: at least one CredentialsRole is required.")
    seen: set[tuple[str, str, str]] = set()
    clean: list[dict[str, Any]] = []
    for i, role in enumerate(roles):
        if not isinstance(role, dict):
            raise _invalid(f"roles[{i}]: a CredentialsRole object is required.")
        name, cc, pid, details = (
            role.get("role"),
            role.get("country_code"),
            role.get("party_id"),
            role.get("business_details"),
        )
        if name not in ROLES:
            raise _invalid(f"roles[{i}].role: one of {', '.join(sorted(ROLES))} required.")
        if not isinstance(cc, str) or not _COUNTRY.match(cc):
            raise _invalid(f"roles[{i}].country_code: ISO 3166-1 alpha-2 code required.")
        if not isinstance(pid, str) or not _PARTY.match(pid):
            raise _invalid(f"roles[{i}].party_id: CiString(3) required.")
        if not isinstance(details, dict) or not isinstance(details.get("name"), str) or not details["name"]:
            raise _invalid(f"roles[{i}].business_details.name: required.")
        if len(details["name"]) > 100:
            raise _invalid(f"roles[{i}].business_details.name: string(100) at most.")
        key = (name, cc.upper(), pid.upper())
        if key in seen:
            raise _invalid(f"roles[{i}]: every role needs a unique combination of role, party_id and country_code.")
        seen.add(key)
        clean.append({**role, "country_code": cc.upper(), "party_id": pid.upper()})
    return Credentials(token=token, url=url, roles=clean)


def our_credentials(partner: RoamingPartner, *, token: str, base_url: str) -> dict[str, Any]:
    """Our Credentials object towards this partner: the tenant's party in each of our roles."""
    return {
        "token": token,
        "url": f"{base_url}/ocpi/versions",
        "roles": [
            {
                "role": role,
                "party_id": partner.our_party_id,
                "country_code": partner.our_country_code,
                "business_details": {"name": partner.tenant.name[:100]},
            }
            for role in partner.our_roles
        ],
    }


def check_roles_match(partner: RoamingPartner, roles: list[dict[str, Any]]) -> None:
    """The party configured for this partner must be among the roles they send."""
    if not any((r["country_code"], r["party_id"]) == (partner.country_code, partner.party_id) for r in roles):
        raise _invalid(f"roles: none of them is the party {partner.party} these credentials were issued to.")


@dataclass(frozen=True)
class Negotiated:
    version: str
    endpoints: list[dict[str, Any]]


def negotiate(versions_url: str, *, token: str, token_style: str, wanted_modules: list[str]) -> Negotiated:
    """Fetch their versions and the 2.2.1 details (3001 when they cannot be fetched, 3002 without 2.2.1, 3003
    without a credentials endpoint or, when modules are enabled, without any of them)."""
    try:
        versions = client.call("GET", versions_url, token=token, token_style=token_style).data
    except client.PartnerCallError as exc:
        raise transport.OcpiError(
            transport.CLIENT_API_UNUSABLE, f"Could not fetch your versions: {exc.message}"
        ) from None
    if not isinstance(versions, list) or not all(isinstance(v, dict) for v in versions):
        raise transport.OcpiError(
            transport.CLIENT_API_UNUSABLE, "Your versions endpoint did not answer a Version list."
        )
    details_url = next((v.get("url") for v in versions if v.get("version") == VERSION), None)
    if not isinstance(details_url, str) or not details_url:
        offered = ", ".join(str(v.get("version")) for v in versions) or "none"
        raise transport.OcpiError(
            transport.UNSUPPORTED_VERSION, f"No mutual version: we speak {VERSION}, you offer {offered}."
        )
    try:
        details = client.call("GET", details_url, token=token, token_style=token_style).data
    except client.PartnerCallError as exc:
        raise transport.OcpiError(
            transport.CLIENT_API_UNUSABLE, f"Could not fetch your {VERSION} details: {exc.message}"
        ) from None
    endpoints = details.get("endpoints") if isinstance(details, dict) else None
    if not isinstance(endpoints, list):
        raise transport.OcpiError(transport.CLIENT_API_UNUSABLE, f"Your {VERSION} details list no endpoints.")
    clean = [
        {"identifier": e["identifier"], "role": e.get("role", ""), "url": e["url"]}
        for e in endpoints
        if isinstance(e, dict) and isinstance(e.get("identifier"), str) and isinstance(e.get("url"), str)
    ]
    identifiers = {e["identifier"] for e in clean}
    if "credentials" not in identifiers:
        raise transport.OcpiError(transport.NO_MATCHING_ENDPOINTS, "Your endpoints have no credentials module.")
    if wanted_modules and not identifiers & set(wanted_modules):
        raise transport.OcpiError(
            transport.NO_MATCHING_ENDPOINTS,
            f"No mutual module: we offer {', '.join(sorted(wanted_modules))}, "
            f"you list {', '.join(sorted(identifiers))}.",
        )
    return Negotiated(version=VERSION, endpoints=clean)
