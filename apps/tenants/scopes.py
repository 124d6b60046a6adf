"""The scopes an API key can hold: `*`, or `<area>:read` / `<area>:write` for one of the areas below.

Every API view names its area (`scope_area`); a test checks that each one is listed here and that every area
listed is used (by views, or `personal_data` by exports), so a key can never be given a scope that grants nothing
(a typo such as `station:read`), nor one that would silently start to grant access when a view with that area name
appears later.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

SCOPE_AREAS: dict[str, str] = {
    "tenants": "the tenant's own settings (branding, legal and bank details)",
    "staff": "staff memberships and invitations",
    "api_keys": "API keys",
    "stations": "locations, charge points, EVSEs, connectors, commands, firmware, diagnostics",
    "customers": "drivers, business customers, contracts, vehicles",
    "tokens": "charging tokens (RFID cards, app tokens)",
    "tariffs": "tariffs, assignments, contract price lists, price calculation",
    "charging": "charging sessions, CDRs, reservations, transaction anomalies",
    "driver": "the driver app endpoints (stations nearby, remote start and stop, own sessions)",
    "billing": "invoices, payments, payment rules, payouts, bank statements",
    "reports": "exports",
    "personal_data": "unmasked personal data (driver names, e-mails, full token ids) in exports",
    "analytics": "KPIs, alerts, alert rules, webhooks",
    "energy": "smart charging: grid nodes, limits, grid signals, building load",
    "search": "the global search (it finds only the kinds the key's other read scopes reach)",
    "roaming": "roaming partners (OCPI parties, their handshake and tokens)",
}

WILDCARD = "*"


def scope_parts(scope: str) -> tuple[str, str] | None:
    """(area, "read"|"write") of a well-formed area scope, else None (also for `*`)."""
    area, sep, mode = scope.partition(":")
    if not sep or mode not in ("read", "write") or not area:
        return None
    return area, mode


def validate_scope(value: str) -> None:
    """`*`, or `<area>:read` / `<area>:write` with a known area; the message names the bad scope."""
    if value == WILDCARD:
        return
    parts = scope_parts(value)
    if parts is None:
        raise ValidationError(
            f"Invalid scope {value!r}: use '*' or '<area>:read' / '<area>:write'.", code="invalid_scope"
        )
    if parts[0] not in SCOPE_AREAS:
        raise ValidationError(
            f"Unknown scope area {parts[0]!r} in {value!r}; known areas: {', '.join(SCOPE_AREAS)}.",
            code="unknown_scope_area",
        )


def scopes_cover(held: list[str] | tuple[str, ...] | set[str], wanted: str) -> bool:
    """Whether scopes `held` grant everything `wanted` grants (`area:write` includes `area:read`)."""
    if WILDCARD in held:
        return True
    if wanted == WILDCARD:
        return False
    parts = scope_parts(wanted)
    if parts is None:
        return False
    area, mode = parts
    return wanted in held or (mode == "read" and f"{area}:write" in held)
