"""The API keeps its contract (issue 12 items 6 and 9): every error under /api/ is JSON in the one shape
whatever the status and wherever it arises, in DEBUG and in production; limits on bodies, nesting, lists and
numbers; pagination parameters are validated; the driver's station search is nearest first."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIHandler
from django.test import Client
from rest_framework.test import APIClient

from apps.analytics.models import Alert
from apps.billing.models import Payment
from apps.core.api.middleware import ApiBodyLimit
from apps.core.api.parsers import depth_of, loads
from apps.reports.models import ExportJob
from apps.stations.models import Location
from apps.tenants.models import Role, Tenant
from tests.analytics.factories import AlertFactory
from tests.stations.factories import ChargePointFactory, EvseFactory, LocationFactory

ERROR_KEYS = {"code", "message", "fields"}


def error_of(response: Any, status: int) -> dict[str, Any]:
    """The response is `status`, JSON, in the one error shape; returns the body."""
    content = getattr(response, "content", b"")
    assert response.status_code == status, (response.status_code, content[:300])
    content_type = response.headers.get("Content-Type", "")
    assert content_type.split(";")[0] == "application/json", (content_type, content[:300])
    body = json.loads(content)
    assert set(body) == ERROR_KEYS, body
    assert isinstance(body["code"], str)
    assert body["code"]
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["fields"], dict)
    return body  # type: ignore[no-any-return]


@pytest.fixture
def admin_a(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> APIClient:
    return client_for(tenant_a, Role.ADMIN)


# --------------------------------------------------------------------------- the 500s the fuzzer found


def test_live_kpis_by_location_counts_the_open_alerts_of_its_chargers(tenant_a: Tenant, admin_a: APIClient) -> None:
    here = LocationFactory(tenant=tenant_a)
    elsewhere = LocationFactory(tenant=tenant_a)
    cp_here = ChargePointFactory(tenant=tenant_a, location=here)
    cp_elsewhere = ChargePointFactory(tenant=tenant_a, location=elsewhere)
    AlertFactory(tenant=tenant_a, charge_point_id=cp_here.pk, subject=f"cp:{cp_here.pk}")
    AlertFactory(tenant=tenant_a, charge_point_id=cp_elsewhere.pk, subject=f"cp:{cp_elsewhere.pk}")
    assert Alert.objects.filter(status="open").count() == 2

    response = admin_a.get(f"/api/v1/analytics/kpis/live/?location={here.pk}")

    assert response.status_code == 200, response.content
    assert response.json()["open_alerts"] == 1
    assert response.json()["chargers"] == 1


def test_a_bank_statement_that_is_not_utf8_is_a_400_and_imports_nothing(tenant_a: Tenant, admin_a: APIClient) -> None:
    upload = io.BytesIO(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    upload.name = "statement.csv"

    response = admin_a.post("/api/v1/payments/bank-statement/", {"file": upload}, format="multipart")

    body = error_of(response, 400)
    assert body["code"] == "bad_file"
    assert body["fields"] == {"file": ["The file is not UTF-8 text."]}
    assert Payment.objects.count() == 0


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("lat=1e999&lon=13.4", "lat"),
        ("lat=52.5&lon=NaN", "lon"),
        ("lat=52.5&lon=-Infinity", "lon"),
        ("lat=91&lon=13.4", "lat"),
        ("lat=52.5&lon=181", "lon"),
        ("lat=52.5&lon=13.4&radius_km=-1", "radius_km"),
        ("lat=52.5&lon=13.4&radius_km=nan", "radius_km"),
        ("lat=52.5&lon=13.4&radius_km=abc", "radius_km"),
        ("lat=52.5", "lon"),
        ("lon=13.4", "lat"),
        ("radius_km=5", "radius_km"),
    ],
)
def test_station_search_refuses_bad_points_naming_the_parameter(
    query: str, parameter: str, tenant_a: Tenant, key_client_for: Callable[..., APIClient]
) -> None:
    LocationFactory(tenant=tenant_a)
    client = key_client_for(tenant_a, ["driver:read"])

    body = error_of(client.get(f"/api/v1/driver/stations/?{query}"), 400)

    assert body["code"] == "validation_error"
    assert list(body["fields"]) == [parameter], body


def test_station_search_is_nearest_first_across_cursor_pages(
    tenant_a: Tenant, key_client_for: Callable[..., APIClient]
) -> None:
    # Berlin, 0.01 degree of latitude apart (~1.1 km): created far-to-near so id order is the reverse
    far = [
        LocationFactory(tenant=tenant_a, latitude=Decimal("52.50") + Decimal("0.01") * i, longitude=Decimal("13.40"))
        for i in range(5, 0, -1)
    ]
    twin = LocationFactory(tenant=tenant_a, latitude=Decimal("52.51"), longitude=Decimal("13.40"))  # same distance
    for location in [*far, twin]:
        EvseFactory(charge_point=ChargePointFactory(tenant=tenant_a, location=location))
    LocationFactory(tenant=tenant_a, latitude=Decimal("48.13"), longitude=Decimal("11.58"))  # Munich, outside 50 km
    client = key_client_for(tenant_a, ["driver:read"])

    seen: list[tuple[int, float]] = []
    url: str | None = "/api/v1/driver/stations/?lat=52.50&lon=13.40&radius_km=50&page_size=2"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        seen += [(row["id"], row["distance_km"]) for row in response.json()["results"]]
        url = response.json()["next"]

    expected = sorted(
        [(loc.pk, round(1.112 * (5 - i), 3)) for i, loc in enumerate(far)] + [(twin.pk, 1.112)],
        key=lambda pair: (pair[1], pair[0]),
    )
    assert [pk for pk, _ in seen] == [pk for pk, _ in expected]
    assert [d for _, d in seen] == sorted(d for _, d in seen)
    assert seen[0][1] == pytest.approx(1.112, abs=0.001)
    assert len(seen) == 6  # Munich is not within the radius, nothing twice


def test_station_search_without_a_point_pages_by_id(tenant_a: Tenant, key_client_for: Callable[..., APIClient]) -> None:
    ids = sorted(LocationFactory(tenant=tenant_a).pk for _ in range(3))
    client = key_client_for(tenant_a, ["driver:read"])

    first = client.get("/api/v1/driver/stations/?page_size=2").json()
    second = client.get(first["next"]).json()

    assert [r["id"] for r in first["results"] + second["results"]] == ids
    assert {r["distance_km"] for r in first["results"]} == {None}


# --------------------------------------------------------------------------- JSON input limits


@pytest.mark.parametrize(
    "body",
    [
        "[" * 3000 + "]" * 3000,
        '{"name": ' + '{"a": ' * 3000 + "1" + "}" * 3000 + "}",
        '{"name": ' + "[" * 40 + "]" * 40 + "}",
        '{"name": NaN}',
        '{"name": Infinity}',
        '{"latitude": 1e999}',
        '{"latitude": -1e999}',
    ],
    ids=["array-3000", "object-3000", "array-40", "NaN", "Infinity", "1e999", "-1e999"],
)
def test_deep_or_non_finite_json_is_a_400_parse_error(body: str, tenant_a: Tenant, admin_a: APIClient) -> None:
    before = Location.objects.count()

    response = admin_a.generic("POST", "/api/v1/locations/", body, content_type="application/json")

    assert error_of(response, 400)["code"] == "parse_error"
    assert Location.objects.count() == before


def test_json_within_the_limits_parses() -> None:
    assert loads('{"a": [[[1.5]]], "b": -2e10}') == {"a": [[[1.5]]], "b": -2e10}
    assert depth_of(loads("[" * 32 + "]" * 32), 32) == 32
    with pytest.raises(ValueError, match="nested deeper than 32"):
        loads("[" * 33 + "]" * 33)


def test_a_body_over_the_limit_is_a_413_in_the_error_shape(tenant_a: Tenant, admin_a: APIClient) -> None:
    body = json.dumps({"name": "x" * (5 * 1024 * 1024)})

    response = admin_a.generic("POST", "/api/v1/locations/", body, content_type="application/json")

    assert error_of(response, 413)["code"] == "request_too_large"
    assert Location.objects.count() == 0


def test_a_list_longer_than_its_cap_is_refused_before_its_items_are_read(
    tenant_a: Tenant, admin_a: APIClient, settings: Any
) -> None:
    settings.API_MAX_LIST_ITEMS = 1000
    payload = {"format": "csv", "location_ids": list(range(1, 1002))}

    body = error_of(admin_a.post("/api/v1/exports/", payload, format="json"), 400)

    assert body["code"] == "validation_error"
    assert body["fields"] == {"location_ids": ["Ensure this field has no more than 1000 elements."]}
    assert ExportJob.objects.count() == 0


# --------------------------------------------------------------------------- errors outside the views


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/invoices/abc/pdf/", 404),
        ("get", "/api/v1/no-such-thing/", 404),
        ("get", "/api/v2/", 404),
        ("get", "/api/v1/tenants", 404),  # no slash: a JSON 404 saying where it goes, never a redirect
        ("post", "/api/v1/tenants", 404),
        ("put", "/api/v1/tenants/", 405),
        ("get", "/api/v1/test-html-error/", 400),
    ],
)
@pytest.mark.django_db
def test_url_level_errors_are_json_in_debug_and_production(
    method: str, path: str, status: int, debug: bool, settings: Any, superuser: Any
) -> None:
    settings.DEBUG = debug
    settings.ROOT_URLCONF = "tests.core.api_urls"
    client = Client()
    client.force_login(superuser)

    body = error_of(getattr(client, method)(path), status)

    if path == "/api/v1/tenants":
        assert body["message"] == "No such endpoint. API paths end with a slash: /api/v1/tenants/"


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize("path", ["/api/v1/test-boom/", "/api/v1/test-plain-boom/"])
@pytest.mark.django_db
def test_an_unhandled_exception_is_a_json_500(path: str, debug: bool, settings: Any) -> None:
    settings.DEBUG = debug
    settings.ROOT_URLCONF = "tests.core.api_urls"

    body = error_of(Client().get(path), 500)

    assert body == {"code": "server_error", "message": "Internal server error.", "fields": {}}


@pytest.mark.django_db
def test_unauthenticated_and_unsupported_media_type_are_json(tenant_a: Tenant, admin_a: APIClient) -> None:
    assert error_of(Client().get("/api/v1/locations/"), 401)["code"] == "not_authenticated"
    response = admin_a.generic("POST", "/api/v1/locations/", "name=x", content_type="text/plain")
    assert error_of(response, 415)["code"] == "unsupported_media_type"


def test_non_api_paths_keep_django_pages(db: None) -> None:
    response = Client().get("/admin/no-such-page")

    assert response.status_code in (301, 302)  # admin still appends the slash / asks to log in


async def _asgi_post(app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/locations/",
        "raw_path": b"/api/v1/locations/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(app, scope)
    for index, chunk in enumerate(chunks):
        await communicator.send_input({"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1})
    messages = [await communicator.receive_output(5), await communicator.receive_output(5)]
    await communicator.wait(5)
    return messages


def test_the_asgi_guard_refuses_a_declared_oversize_body_without_calling_django(settings: Any) -> None:
    settings.API_MAX_BODY_BYTES = 1000
    called = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)

    start, body = asyncio.run(
        _asgi_post(
            ApiBodyLimit(app), [b"{}"], [(b"content-type", b"application/json"), (b"content-length", b"5000000")]
        )
    )

    assert called == []
    assert start["status"] == 413
    assert (b"content-type", b"application/json") in start["headers"]
    assert json.loads(body["body"])["code"] == "request_too_large"


@pytest.mark.django_db(transaction=True)
def test_the_asgi_guard_stops_reading_a_chunked_body_at_the_limit(settings: Any) -> None:
    settings.API_MAX_BODY_BYTES = 1000
    chunks = [b"[" + b"1," * 200, b"1," * 400, b"1]"]  # no Content-Length; 1,203 bytes in all

    start, body = asyncio.run(_asgi_post(ApiBodyLimit(ASGIHandler()), chunks, [(b"content-type", b"application/json")]))

    assert start["status"] == 413
    assert json.loads(body["body"]) == {
        "code": "request_too_large",
        "message": "The request body is larger than 1000 bytes.",
        "fields": {},
    }


# --------------------------------------------------------------------------- pagination parameters


@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "1.5", "501", ""])
def test_a_page_size_that_is_not_1_to_500_is_a_400(page_size: str, tenant_a: Tenant, admin_a: APIClient) -> None:
    body = error_of(admin_a.get(f"/api/v1/locations/?page_size={page_size}"), 400)

    assert body["fields"] == {"page_size": ["A whole number from 1 to 500."]}


@pytest.mark.parametrize(
    "cursor",
    ["abc", "%%%", "cD1hYmM=", "cj0x"],  # not base64; not ascii; position "abc" on an id ordering
    ids=["garbage", "percent", "position-not-a-number", "reverse-only"],
)
def test_a_cursor_this_api_did_not_hand_out_is_a_400(cursor: str, tenant_a: Tenant, admin_a: APIClient) -> None:
    LocationFactory(tenant=tenant_a)

    response = admin_a.get(f"/api/v1/locations/?cursor={cursor}")

    if cursor == "cj0x":  # "r=1" alone is a well-formed (empty) cursor: the first page backwards
        assert response.status_code == 200
        return
    body = error_of(response, 400)
    assert body["fields"] == {"cursor": ["Invalid cursor."]}


def test_page_size_and_cursor_work_together(tenant_a: Tenant, admin_a: APIClient) -> None:
    ids = sorted((LocationFactory(tenant=tenant_a).pk for _ in range(3)), reverse=True)

    first = admin_a.get("/api/v1/locations/?page_size=2").json()
    second = admin_a.get(first["next"]).json()

    assert [r["id"] for r in first["results"] + second["results"]] == ids


# --------------------------------------------------------------------------- one rule for paths


def test_every_api_path_ends_with_a_slash() -> None:
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns: list[Any], prefix: str = "") -> list[str]:
        found: list[str] = []
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                found += walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                found.append(prefix + str(pattern.pattern))
        return found

    api = [p for p in walk(get_resolver().url_patterns) if p.startswith("api/")]

    assert api
    assert [p for p in api if not p.removesuffix("$").removesuffix("?").endswith("/")] == []


def test_creating_a_staff_user_is_a_json_405_pointing_to_invitations_not_a_500(
    tenant_a: Tenant, admin_a: APIClient
) -> None:
    """make api-fuzz once got a 500 from `POST /staff-users/` with `is_active`; people now join by invitation."""
    from apps.tenants.models import Membership, User

    before = (User.objects.count(), Membership.objects.count())
    payload = {"username": "someone-new", "role": "read_only", "is_active": False}

    body = error_of(admin_a.post("/api/v1/staff-users/", payload, format="json"), 405)

    assert body["code"] == "method_not_allowed"
    assert "staff-invitations" in body["message"]
    assert (User.objects.count(), Membership.objects.count()) == before


# --------------------------------------------------------------------------- under a real daphne


@pytest.mark.slow
def test_daphne_hands_an_unparseable_multipart_body_to_django(tmp_path: Any) -> None:
    """Twisted answered a multipart body without parts with a bare 400 (no Content-Type, no body) before
    Django saw it; now Django answers, in the error shape (here 401: no credentials)."""
    import os
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    import requests

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daphne = Path(sys.executable).parent / "daphne"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "evplatform.settings.test"}
    log = (tmp_path / "daphne.log").open("wb")
    proc = subprocess.Popen(
        [str(daphne), "-b", "127.0.0.1", "-p", str(port), "evplatform.asgi:application"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90  # daphne imports the whole project: slow on a busy machine
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise AssertionError(f"daphne did not come up: {(tmp_path / 'daphne.log').read_text()[-2000:]}")
        boundary = "c637e12e2b1a998d80d1b087531af51c"

        response = requests.post(
            f"{base}/api/v1/payments/bank-statement/",
            data=f"--{boundary}--\r\n".encode(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=30,
        )

        assert error_of(response, 401)["code"] == "not_authenticated"
    finally:
        proc.terminate()
        proc.wait(10)


# --------------------------------------------------------------------------- one name per filter, CDR filters


def test_list_filters_have_one_name_per_field_and_refuse_unknown_ones(tenant_a: Tenant, admin_a: APIClient) -> None:
    from tests.customers.factories import DriverFactory, TokenFactory

    driver = DriverFactory(tenant=tenant_a)
    mine = TokenFactory(tenant=tenant_a, driver=driver)
    TokenFactory(tenant=tenant_a)

    by_field = admin_a.get(f"/api/v1/tokens/?driver={driver.pk}")
    by_alias = admin_a.get(f"/api/v1/tokens/?driver_id={driver.pk}")
    typo = admin_a.get(f"/api/v1/tokens/?drivr={driver.pk}")

    assert [row["id"] for row in by_field.json()["results"]] == [mine.pk]
    assert error_of(by_alias, 400)["fields"] == {"driver_id": ["Unknown query parameter."]}
    assert error_of(typo, 400)["fields"] == {"drivr": ["Unknown query parameter."]}


def test_cdrs_filter_by_session_location_and_start_time(tenant_a: Tenant, admin_a: APIClient) -> None:
    import datetime as dt

    from tests.charging.factories import CdrFactory

    here = LocationFactory(tenant=tenant_a)
    cp_here = ChargePointFactory(tenant=tenant_a, location=here)
    cp_there = ChargePointFactory(tenant=tenant_a, location=LocationFactory(tenant=tenant_a))
    t0 = dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC)
    early = CdrFactory(
        session__charge_point=cp_here, session__location=here, session__tenant=tenant_a, session__started_at=t0
    )
    late = CdrFactory(
        session__charge_point=cp_here,
        session__location=here,
        session__tenant=tenant_a,
        session__started_at=t0 + dt.timedelta(days=2),
    )
    elsewhere = CdrFactory(
        session__charge_point=cp_there,
        session__location=cp_there.location,
        session__tenant=tenant_a,
        session__started_at=t0,
    )

    def ids(query: str) -> list[int]:
        response = admin_a.get(f"/api/v1/cdrs/?{query}")
        assert response.status_code == 200, response.content
        return sorted(row["id"] for row in response.json()["results"])

    assert ids(f"session={late.session_id}") == [late.pk]
    assert ids(f"location={here.pk}") == sorted([early.pk, late.pk])
    assert ids("date_from=2026-11-02T00:00:00Z") == [late.pk]
    assert ids("date_to=2026-11-02T00:00:00Z") == sorted([early.pk, elsewhere.pk])
    assert ids(f"location={here.pk}&date_to=2026-11-02T00:00:00Z") == [early.pk]
    assert error_of(admin_a.get("/api/v1/cdrs/?date_from=yesterday"), 400)["code"] == "validation_error"


def test_a_date_time_filter_with_an_offset_postgresql_cannot_store_is_read_in_utc(
    tenant_a: Tenant, admin_a: APIClient
) -> None:
    response = admin_a.get("/api/v1/cdrs/?date_from=0738-02-06T06:40:29.899844-17:30")

    assert response.status_code == 200, response.content
    assert response.json()["results"] == []
