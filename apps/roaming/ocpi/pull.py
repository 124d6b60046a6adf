"""Pulling a CPO partner's Sender interfaces (we are eMSP): locations, tariffs, sessions and CDRs, for partners that
push nothing, and the full resync.

- Incremental (beat, `roaming.pull_sweep` every OCPI_PULL_SWEEP_S): a module of a registered partner we play eMSP
  for, enabled and listed by the partner as SENDER, is due when its last pull attempt is OCPI_PULL_INTERVAL_S old and
  the partner pushed nothing to our Receiver of it meanwhile. GET with `date_from` = the start of the last successful
  pull less OCPI_PULL_OVERLAP_S (their clock is not ours; an object received twice is harmless: the stores keep the
  newest by last_updated and a CDR is stored once).
- Full (admin action, API `POST /api/v1/roaming-partners/{id}/pull/`): no date_from, every module; afterwards the
  partner's locations it no longer lists get their EVSEs set to REMOVED (OCPI has no deletion of locations: "set
  the EVSEs to REMOVED" is how a CPO withdraws one) and the tariffs it no longer lists are deleted (tariffs have
  DELETE). Sessions and CDRs are history: never removed.
- Pagination (transport_and_format): the `Link: <…>; rel="next"` header is followed; without one, X-Total-Count and
  the offset tell whether to ask for the next offset. A page that is not a list, or a loop of links, fails the pull.
- Every object goes through the same parser and domain services as a push to our Receivers; an object that fails
  its checks is skipped and counted (`PullResult.refused`, the first reasons in `last_error`), the rest are stored.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.utils import timezone

from apps.roaming.models import Module, PartnerStatus, PullState, RoamingPartner, Role
from apps.roaming.ocpi import client, emsp_parse
from apps.roaming.ocpi.emsp_receivers import check_party
from apps.roaming.ocpi.transport import OcpiError, ocpi_datetime
from apps.sessions import services as session_services
from apps.stations import services as station_services
from apps.tariffs import services as tariff_services

logger = logging.getLogger(__name__)

MODULES = (Module.LOCATIONS, Module.TARIFFS, Module.SESSIONS, Module.CDRS)
MAX_PAGES = 100_000
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?', re.IGNORECASE)


@dataclass
class PullResult:
    module: str
    received: int = 0
    stored: int = 0
    refused: int = 0
    removed: int = 0
    pages: int = 0
    errors: list[str] = field(default_factory=list)


def interval() -> dt.timedelta:
    return dt.timedelta(seconds=float(getattr(settings, "OCPI_PULL_INTERVAL_S", 900)))


def overlap() -> dt.timedelta:
    return dt.timedelta(seconds=float(getattr(settings, "OCPI_PULL_OVERLAP_S", 60)))


def pullable_modules(partner: RoamingPartner) -> list[str]:
    if partner.status != PartnerStatus.REGISTERED or Role.EMSP not in partner.our_roles:
        return []
    return [m for m in MODULES if m in partner.enabled_modules and partner.endpoint_url(m, "SENDER")]


def due(now: dt.datetime | None = None) -> list[tuple[int, str]]:
    """(partner id, module) pairs whose scheduled pull is due."""
    now = now or timezone.now()
    every = interval()
    states = {(s.partner_id, s.module): s for s in PullState.objects.all()}
    found = []
    partners = RoamingPartner.objects.filter(status=PartnerStatus.REGISTERED, our_roles__contains=[Role.EMSP])
    for partner in partners.order_by("pk"):
        for module in pullable_modules(partner):
            state = states.get((partner.pk, module))
            if state is None:
                found.append((partner.pk, module))
                continue
            if state.last_attempt_at is not None and state.last_attempt_at > now - every:
                continue
            if state.last_push_at is not None and state.last_push_at > now - every:
                continue  # the partner pushes this module: no need to pull it
            found.append((partner.pk, module))
    return found


def _next_url(answer: client.OcpiAnswer, url: str, count: int) -> str | None:
    link = answer.headers.get("Link") or answer.headers.get("link")
    if link:
        match = _NEXT.search(link)
        if match:
            return match.group(1)
    total = answer.headers.get("X-Total-Count")
    if not count or not total or not total.isdigit():
        return None
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    offset = int(query.get("offset", "0") or 0) + count
    if offset >= int(total):
        return None
    query["offset"] = str(offset)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _store(partner: RoamingPartner, module: str, item: Any) -> tuple[bool, tuple[str, str, str] | None]:
    """One pulled object through the Receivers' parser and services: (stored, its key)."""
    tenant_id, partner_id = partner.tenant_id, partner.pk
    if module == Module.LOCATIONS:
        location = emsp_parse.parse_location(item)
        check_party(partner, location.country_code, location.party_id, what="location")
        _, applied = station_services.partner_location_put(
            tenant_id=tenant_id, partner_id=partner_id, location=location
        )
        return applied, (location.country_code, location.party_id, location.ocpi_id)
    if module == Module.TARIFFS:
        country_code, party_id, ocpi_id, currency, data, last_updated = emsp_parse.parse_tariff(item)
        check_party(partner, country_code, party_id, what="tariff")
        _, applied = tariff_services.partner_tariff_put(
            tenant_id=tenant_id,
            partner_id=partner_id,
            country_code=country_code,
            party_id=party_id,
            ocpi_id=ocpi_id,
            currency=currency,
            data=data,
            last_updated=last_updated,
        )
        return applied, (country_code, party_id, ocpi_id)
    if module == Module.SESSIONS:
        session = emsp_parse.parse_session(item)
        check_party(partner, session.country_code, session.party_id, what="session")
        _, applied = session_services.partner_session_put(tenant_id=tenant_id, partner_id=partner_id, session=session)
        return applied, None
    cdr = emsp_parse.parse_cdr(item)
    check_party(partner, cdr.country_code, cdr.party_id, what="cdr")
    created = session_services.partner_cdr_create(tenant_id=tenant_id, partner_id=partner_id, cdr=cdr)
    return created is not None, None


def pull_module(*, partner: RoamingPartner, module: str, full: bool = False) -> PullResult:
    """Pull one module of the partner (PartnerCallError when a page cannot be fetched: the pull is recorded as
    failed, what was stored stays, and the next pull starts again from the same date_from)."""
    state, _ = PullState.objects.get_or_create(partner=partner, module=module)
    started = timezone.now()
    PullState.objects.filter(pk=state.pk).update(last_attempt_at=started)
    url = partner.endpoint_url(module, "SENDER")
    result = PullResult(module=module)
    if not url:
        raise client.PartnerCallError(f"The partner lists no {module} Sender endpoint.")
    query: dict[str, str] = {}
    if not full and state.synced_from is not None:
        query["date_from"] = ocpi_datetime(state.synced_from)
    next_url: str | None = f"{url}?{urlencode(query)}" if query else url
    seen_urls: set[str] = set()
    listed: set[tuple[str, str, str]] = set()
    try:
        while next_url:
            if next_url in seen_urls or result.pages >= MAX_PAGES:
                raise client.PartnerCallError(f"{module}: the pages' next links loop ({next_url}).")
            seen_urls.add(next_url)
            answer = client.call(
                "GET", next_url, token=partner.their_token, token_style=partner.token_style, routing=partner
            )
            result.pages += 1
            if not isinstance(answer.data, list):
                raise client.PartnerCallError(f"{module}: a page of {next_url} is not a list.")
            for item in answer.data:
                result.received += 1
                try:
                    stored, key = _store(partner, module, item)
                except OcpiError as refused:
                    result.refused += 1
                    if len(result.errors) < 5:
                        result.errors.append(f"object {result.received - 1}: {refused.message}")
                    continue
                if key is not None:
                    listed.add(key)
                result.stored += int(stored)
            next_url = _next_url(answer, next_url, len(answer.data))
    except client.PartnerCallError as error:
        PullState.objects.filter(pk=state.pk).update(last_error=error.message[:500], last_count=result.received)
        raise
    if full and module == Module.LOCATIONS:
        result.removed = station_services.partner_locations_unlisted_removed(
            tenant_id=partner.tenant_id, partner_id=partner.pk, keep=listed
        )
    elif full and module == Module.TARIFFS:
        result.removed = tariff_services.partner_tariffs_remove_unlisted(
            tenant_id=partner.tenant_id, partner_id=partner.pk, keep=listed
        )
    PullState.objects.filter(pk=state.pk).update(
        synced_from=started - overlap(),
        last_success_at=timezone.now(),
        last_count=result.received,
        last_error="; ".join(result.errors)[:500],
    )
    return result


def pull_partner(*, partner_id: int, modules: list[str] | None = None, full: bool = False) -> list[PullResult]:
    """Pull the partner's modules (all it offers, or `modules`), each on its own: one failing does not stop the
    others. The failures are in the results' `errors` (and PullState.last_error)."""
    partner = RoamingPartner.objects.get(pk=partner_id)
    results = []
    for module in pullable_modules(partner):
        if modules is not None and module not in modules:
            continue
        try:
            results.append(pull_module(partner=partner, module=module, full=full))
        except client.PartnerCallError as error:
            logger.warning("OCPI pull of %s from partner %s failed: %s", module, partner_id, error.message)
            results.append(PullResult(module=module, errors=[error.message]))
    return results
