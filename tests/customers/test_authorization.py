"""token_authorize: what the OCPP layer gets for Authorize / StartTransaction, case by case."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from apps.customers.authorization import (
    AuthorizationResult,
    Reason,
    RoamingAuthorization,
    RoamingToken,
    within_time_windows,
)
from apps.customers.models import Token, TokenSource, WhitelistType
from apps.customers.services import token_authorize
from apps.stations.models import Location
from apps.tenants.models import Tenant
from tests.customers.factories import BusinessCustomerFactory, ContractFactory, DriverFactory, TokenFactory
from tests.customers.roaming_fakes import TablePartner
from tests.registry import snapshot

NOW = dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.UTC)  # a Wednesday; 13:00 in Berlin
WEEKDAYS_DAYTIME = [{"days_of_week": [1, 2, 3, 4, 5], "start_time": "07:00", "end_time": "19:00"}]
FRIDAY_NIGHT = [{"days_of_week": [5], "start_time": "22:00", "end_time": "06:00"}]


@pytest.fixture(autouse=True)
def partner(settings: SettingsWrapper) -> Iterator[type[TablePartner]]:
    settings.ROAMING_AUTHORIZERS = []
    TablePartner.answers = {}
    TablePartner.calls = []
    yield TablePartner
    TablePartner.answers = {}
    TablePartner.calls = []


def authorize(tenant: Tenant, id_tag: str, **kwargs: object) -> AuthorizationResult:
    return token_authorize(tenant=tenant, id_tag=id_tag, **{"at": NOW, **kwargs})  # type: ignore[arg-type]


def location(tenant: Tenant, name: str) -> Location:
    return Location.objects.create(
        tenant=tenant, name=name, address="Hauptstr. 1", city="Berlin", latitude=Decimal(52), longitude=Decimal(13)
    )


def test_valid_token_is_accepted(tenant_a: Tenant) -> None:
    token = TokenFactory(tenant=tenant_a, uid="04AABBCCDD", expires_at=NOW + dt.timedelta(days=30))

    result = authorize(tenant_a, "04AABBCCDD")

    assert result == AuthorizationResult("Accepted", token, None, NOW + dt.timedelta(days=30), Reason.ACCEPTED)


def test_uid_is_matched_ignoring_case(tenant_a: Tenant) -> None:
    token = TokenFactory(tenant=tenant_a, uid="04aabbccdd")

    result = authorize(tenant_a, "04AABBCCDD")

    assert (result.status, result.token) == ("Accepted", token)


@pytest.mark.parametrize(
    ("fields", "status", "reason"),
    [
        ({"blocked": True}, "Blocked", Reason.BLOCKED),
        ({"valid": False}, "Invalid", Reason.NOT_VALID),
        ({"expires_at": NOW - dt.timedelta(seconds=1)}, "Expired", Reason.TOKEN_EXPIRED),
        ({"expires_at": NOW}, "Expired", Reason.TOKEN_EXPIRED),
    ],
    ids=["blocked", "invalid-flag", "expired", "expires-now"],
)
def test_refused_tokens(tenant_a: Tenant, fields: dict[str, object], status: str, reason: str) -> None:
    token = TokenFactory(tenant=tenant_a, uid="TAG1", **fields)

    result = authorize(tenant_a, "TAG1")

    assert result == AuthorizationResult(status, token, None, None, reason)


def test_unknown_token_without_authorizer_is_invalid(tenant_a: Tenant) -> None:
    result = authorize(tenant_a, "NOBODY")

    assert result == AuthorizationResult("Invalid", None, None, None, Reason.UNKNOWN)
    assert Token.objects.count() == 0


def test_token_of_another_tenant_is_unknown(tenant_a: Tenant, tenant_b: Tenant) -> None:
    TokenFactory(tenant=tenant_b, uid="TAG-B")

    result = authorize(tenant_a, "TAG-B")

    assert (result.status, result.token, result.reason) == ("Invalid", None, Reason.UNKNOWN)


def test_inactive_driver_and_customer_block_their_tokens(tenant_a: Tenant) -> None:
    TokenFactory(tenant=tenant_a, uid="D", driver=DriverFactory(tenant=tenant_a, is_active=False))
    TokenFactory(tenant=tenant_a, uid="C", business_customer=BusinessCustomerFactory(tenant=tenant_a, is_active=False))

    assert (authorize(tenant_a, "D").status, authorize(tenant_a, "D").reason) == ("Blocked", Reason.DRIVER_INACTIVE)
    assert (authorize(tenant_a, "C").status, authorize(tenant_a, "C").reason) == ("Blocked", Reason.CUSTOMER_INACTIVE)


def test_an_account_without_credit_blocks_its_tokens(tenant_a: Tenant) -> None:
    """`credit_blocked` on the driver or the business customer: OCPP has no NoCredit in 1.6, so Blocked, with the
    reason the OCPI eMSP side answers NO_CREDIT for (tests/roaming/test_emsp_authorize.py)."""
    TokenFactory(tenant=tenant_a, uid="D", driver=DriverFactory(tenant=tenant_a, credit_blocked=True))
    TokenFactory(
        tenant=tenant_a, uid="C", business_customer=BusinessCustomerFactory(tenant=tenant_a, credit_blocked=True)
    )
    TokenFactory(tenant=tenant_a, uid="OK", driver=DriverFactory(tenant=tenant_a))

    assert (authorize(tenant_a, "D").status, authorize(tenant_a, "D").reason) == ("Blocked", Reason.NO_CREDIT)
    assert (authorize(tenant_a, "C").status, authorize(tenant_a, "C").reason) == ("Blocked", Reason.NO_CREDIT)
    assert authorize(tenant_a, "OK").accepted


def test_a_foreign_location_is_outside_every_list_of_allowed_locations(tenant_a: Tenant) -> None:
    """A CPO partner asks us (eMSP) about its own location: a contract that lists locations lists ours only."""
    listed = ContractFactory(tenant=tenant_a)
    listed.allowed_locations.set([location(tenant_a, "Depot")])
    anywhere = ContractFactory(tenant=tenant_a)
    TokenFactory(tenant=tenant_a, uid="L", business_contract=listed, business_customer=listed.business_customer)
    TokenFactory(tenant=tenant_a, uid="A", business_contract=anywhere, business_customer=anywhere.business_customer)

    refused = token_authorize(tenant=tenant_a, id_tag="L", at=NOW, foreign_location=True)
    assert (refused.status, refused.reason) == ("Invalid", Reason.LOCATION_NOT_ALLOWED)
    assert token_authorize(tenant=tenant_a, id_tag="A", at=NOW, foreign_location=True).accepted
    assert token_authorize(tenant=tenant_a, id_tag="L", at=NOW).accepted  # no location named: as before


def test_group_id_is_returned_as_parent_id_tag(tenant_a: Tenant) -> None:
    TokenFactory(tenant=tenant_a, uid="CARD", group_id="FAMILY-1")
    TokenFactory(tenant=tenant_a, uid="FOB", group_id="FAMILY-1")

    card, fob = authorize(tenant_a, "CARD"), authorize(tenant_a, "FOB")

    assert (card.status, card.parent_id_tag) == ("Accepted", "FAMILY-1")
    assert (fob.status, fob.parent_id_tag) == ("Accepted", "FAMILY-1")


def test_blocked_parent_blocks_the_group(tenant_a: Tenant) -> None:
    TokenFactory(tenant=tenant_a, uid="FAMILY-1", blocked=True)
    TokenFactory(tenant=tenant_a, uid="CARD", group_id="family-1")

    result = authorize(tenant_a, "CARD")

    assert (result.status, result.parent_id_tag, result.reason) == ("Blocked", "family-1", Reason.PARENT_BLOCKED)


def test_refused_token_still_reports_its_parent(tenant_a: Tenant) -> None:
    TokenFactory(tenant=tenant_a, uid="CARD", group_id="G", blocked=True)

    assert authorize(tenant_a, "CARD").parent_id_tag == "G"


def test_contract_dates(tenant_a: Tenant) -> None:
    ended = ContractFactory(tenant=tenant_a, valid_from=NOW - dt.timedelta(days=60), valid_until=NOW)
    future = ContractFactory(tenant=tenant_a, valid_from=NOW + dt.timedelta(days=1))
    running = ContractFactory(
        tenant=tenant_a, valid_from=NOW - dt.timedelta(days=1), valid_until=NOW + dt.timedelta(days=10)
    )
    TokenFactory(tenant=tenant_a, uid="ENDED", business_contract=ended)
    TokenFactory(tenant=tenant_a, uid="FUTURE", business_contract=future)
    TokenFactory(tenant=tenant_a, uid="RUNNING", business_contract=running, expires_at=NOW + dt.timedelta(days=20))

    assert (authorize(tenant_a, "ENDED").status, authorize(tenant_a, "ENDED").reason) == (
        "Expired",
        Reason.CONTRACT_EXPIRED,
    )
    assert (authorize(tenant_a, "FUTURE").status, authorize(tenant_a, "FUTURE").reason) == (
        "Invalid",
        Reason.CONTRACT_NOT_STARTED,
    )
    # accepted until the earlier of the token's and the contract's end
    accepted = authorize(tenant_a, "RUNNING")
    assert (accepted.status, accepted.expiry_date) == ("Accepted", NOW + dt.timedelta(days=10))


@pytest.mark.parametrize(
    ("windows", "at", "tz", "status"),
    [
        (WEEKDAYS_DAYTIME, NOW, None, "Accepted"),  # Wed 13:00 Berlin
        (WEEKDAYS_DAYTIME, dt.datetime(2026, 3, 4, 18, 30, tzinfo=dt.UTC), None, "Invalid"),  # Wed 19:30 Berlin
        (WEEKDAYS_DAYTIME, dt.datetime(2026, 3, 4, 17, 30, tzinfo=dt.UTC), None, "Accepted"),  # 18:30 Berlin
        # the same instant is 19:30 in Berlin but 13:30 in New York: the location's zone decides
        (WEEKDAYS_DAYTIME, dt.datetime(2026, 3, 4, 18, 30, tzinfo=dt.UTC), "America/New_York", "Accepted"),
        (WEEKDAYS_DAYTIME, dt.datetime(2026, 3, 7, 11, 0, tzinfo=dt.UTC), None, "Invalid"),  # Saturday
        # Friday 22:00 to Saturday 06:00 (Berlin, UTC+1 in March before DST)
        (FRIDAY_NIGHT, dt.datetime(2026, 3, 6, 21, 0, tzinfo=dt.UTC), None, "Accepted"),  # Fri 22:00
        (FRIDAY_NIGHT, dt.datetime(2026, 3, 6, 23, 30, tzinfo=dt.UTC), None, "Accepted"),  # Sat 00:30
        (FRIDAY_NIGHT, dt.datetime(2026, 3, 7, 4, 59, tzinfo=dt.UTC), None, "Accepted"),  # Sat 05:59
        (FRIDAY_NIGHT, dt.datetime(2026, 3, 7, 5, 0, tzinfo=dt.UTC), None, "Invalid"),  # Sat 06:00
        (FRIDAY_NIGHT, dt.datetime(2026, 3, 6, 20, 59, tzinfo=dt.UTC), None, "Invalid"),  # Fri 21:59
        (FRIDAY_NIGHT, dt.datetime(2026, 3, 5, 23, 30, tzinfo=dt.UTC), None, "Invalid"),  # Fri 00:30 (Thu night)
    ],
)
def test_time_windows_in_local_time(
    tenant_a: Tenant, windows: list[dict[str, object]], at: dt.datetime, tz: str | None, status: str
) -> None:
    contract = ContractFactory(tenant=tenant_a, time_windows=windows)
    TokenFactory(tenant=tenant_a, uid="FLEET-1", business_contract=contract)

    result = token_authorize(tenant=tenant_a, id_tag="FLEET-1", at=at, tz=tz)

    assert result.status == status
    assert result.reason == (Reason.ACCEPTED if status == "Accepted" else Reason.OUTSIDE_TIME_WINDOW)


def test_within_time_windows_edges() -> None:
    monday_0030 = dt.datetime(2026, 3, 2, 0, 30)
    sunday_night = [{"days_of_week": [7], "start_time": "23:00", "end_time": "01:00"}]

    assert within_time_windows([], monday_0030) is True
    assert within_time_windows(sunday_night, monday_0030) is True
    assert within_time_windows(sunday_night, monday_0030.replace(hour=1)) is False


def test_allowed_locations(tenant_a: Tenant) -> None:
    depot, elsewhere = location(tenant_a, "Depot"), location(tenant_a, "Elsewhere")
    restricted = ContractFactory(tenant=tenant_a)
    restricted.allowed_locations.set([depot])
    TokenFactory(tenant=tenant_a, uid="FLEET-1", business_contract=restricted)
    TokenFactory(tenant=tenant_a, uid="ANYWHERE", business_contract=ContractFactory(tenant=tenant_a))

    at_depot = authorize(tenant_a, "FLEET-1", location_id=depot.pk)
    at_elsewhere = authorize(tenant_a, "FLEET-1", location_id=elsewhere.pk)
    unrestricted = authorize(tenant_a, "ANYWHERE", location_id=elsewhere.pk)
    no_location_given = authorize(tenant_a, "FLEET-1")

    assert at_depot.status == "Accepted"
    assert (at_elsewhere.status, at_elsewhere.reason) == ("Invalid", Reason.LOCATION_NOT_ALLOWED)
    assert unrestricted.status == "Accepted"
    assert no_location_given.status == "Accepted"


# --------------------------------------------------------------------------- roaming


def roaming_token(uid: str, **kwargs: object) -> RoamingToken:
    return RoamingToken(
        uid=uid, contract_id="NL-TNM-C12345678-X", issuer="TheNewMotion", country_code="NL", party_id="TNM", **kwargs
    )  # type: ignore[arg-type]


def test_unknown_token_asks_roaming_and_caches_the_answer(
    tenant_a: Tenant, settings: SettingsWrapper, partner: type[TablePartner]
) -> None:
    settings.ROAMING_AUTHORIZERS = [
        "tests.customers.roaming_fakes.SilentPartner",
        "tests.customers.roaming_fakes.TablePartner",
    ]
    until = NOW + dt.timedelta(hours=2)
    partner.answers["04ROAM"] = RoamingAuthorization(
        "Accepted", reason="ok", expiry_date=until, token=roaming_token("04ROAM", group_id="NL-GROUP")
    )

    result = authorize(tenant_a, "04ROAM", location_id=7)

    assert partner.calls == [(tenant_a.pk, "04ROAM", 7)]
    assert (result.status, result.parent_id_tag, result.expiry_date, result.reason) == (
        "Accepted",
        "NL-GROUP",
        until,
        "roaming:ok",
    )
    cached = Token.objects.get(tenant=tenant_a, uid="04ROAM")
    assert result.token == cached
    assert (cached.source, cached.country_code, cached.party_id, cached.contract_id, cached.issuer) == (
        TokenSource.ROAMING,
        "NL",
        "TNM",
        "NL-TNM-C12345678-X",
        "TheNewMotion",
    )


def test_roaming_refusal_is_honoured(tenant_a: Tenant, settings: SettingsWrapper, partner: type[TablePartner]) -> None:
    settings.ROAMING_AUTHORIZERS = ["tests.customers.roaming_fakes.TablePartner"]
    partner.answers["04BLOCKED"] = RoamingAuthorization("Blocked", reason="stolen card")

    result = authorize(tenant_a, "04BLOCKED")

    assert result == AuthorizationResult("Blocked", None, None, None, "roaming:stolen card")
    assert Token.objects.count() == 0  # no token data in the answer: nothing cached


def test_unknown_to_every_partner_is_invalid(
    tenant_a: Tenant, settings: SettingsWrapper, partner: type[TablePartner]
) -> None:
    settings.ROAMING_AUTHORIZERS = [
        "tests.customers.roaming_fakes.BrokenPartner",
        "tests.customers.roaming_fakes.TablePartner",
    ]

    result = authorize(tenant_a, "NOBODY")

    assert partner.calls == [(tenant_a.pk, "NOBODY", None)]  # the broken partner did not stop the next one
    assert (result.status, result.token, result.reason) == ("Invalid", None, Reason.UNKNOWN)


def test_own_tokens_never_ask_roaming(tenant_a: Tenant, settings: SettingsWrapper, partner: type[TablePartner]) -> None:
    settings.ROAMING_AUTHORIZERS = ["tests.customers.roaming_fakes.TablePartner"]
    TokenFactory(tenant=tenant_a, uid="OWN", blocked=True)

    result = authorize(tenant_a, "OWN")

    assert partner.calls == []
    assert result.status == "Blocked"


@pytest.mark.parametrize(
    ("whitelist", "partner_answers", "status", "reason"),
    [
        (WhitelistType.NEVER, False, "Invalid", Reason.ROAMING_NO_ANSWER),
        (WhitelistType.NEVER, True, "Blocked", "roaming:revoked"),
        (WhitelistType.ALLOWED_OFFLINE, False, "Accepted", Reason.ACCEPTED),
        (WhitelistType.ALLOWED_OFFLINE, True, "Blocked", "roaming:revoked"),
        (WhitelistType.ALWAYS, True, "Accepted", Reason.ACCEPTED),  # whitelisted: the partner is not asked
    ],
)
def test_cached_roaming_tokens_follow_their_whitelist(
    tenant_a: Tenant,
    settings: SettingsWrapper,
    partner: type[TablePartner],
    whitelist: str,
    partner_answers: bool,
    status: str,
    reason: str,
) -> None:
    settings.ROAMING_AUTHORIZERS = ["tests.customers.roaming_fakes.TablePartner"]
    TokenFactory(tenant=tenant_a, uid="CACHED", source=TokenSource.ROAMING, whitelist=whitelist)
    if partner_answers:
        partner.answers["CACHED"] = RoamingAuthorization("Blocked", reason="revoked")

    result = authorize(tenant_a, "CACHED")

    assert (result.status, result.reason) == (status, reason)
    assert len(partner.calls) == (0 if whitelist == WhitelistType.ALWAYS else 1)


def test_roaming_answer_never_overwrites_own_token(tenant_a: Tenant) -> None:
    from apps.customers.services import token_cache_roaming

    own = TokenFactory(tenant=tenant_a, uid="MINE", issuer="Alpha")
    before = snapshot(own)

    result = token_cache_roaming(tenant=tenant_a, data=roaming_token("mine"))

    assert result == own
    assert snapshot(own) == before
