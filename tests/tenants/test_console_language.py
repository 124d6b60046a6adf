"""The console speaks the staff member's language: the one chosen in the header's selector, else the browser's,
else the tenant's default; the API stays English."""

from __future__ import annotations

from collections.abc import Callable

from django.test import Client

from apps.tenants.models import Role, Tenant, User


def _german(tenant: Tenant) -> Tenant:
    tenant.language = "de"
    tenant.save(update_fields=["language"])
    return tenant


def test_staff_of_a_german_tenant_get_the_console_in_german(
    tenant_a: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    client.force_login(make_staff(_german(tenant_a), Role.ADMIN, is_staff=True))

    page = client.get("/admin/")  # no Accept-Language, no choice made: the tenant's default

    html = page.content.decode()
    assert page.status_code == 200
    assert page.headers["Content-Language"] == "de"
    assert '<html lang="de"' in html
    assert "Betriebskonsole" in html
    assert "Abmelden" in html
    assert "Operations console" not in html


def test_a_german_staff_users_form_shows_german_labels_and_help(
    tenant_a: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    client.force_login(make_staff(_german(tenant_a), Role.ADMIN, is_staff=True))

    html = client.get(f"/admin/tenants/tenant/{tenant_a.pk}/change/").content.decode()

    assert ">Sprache:</label>" in html
    assert "Standardsprache der Konsole für die Mitarbeitenden dieses Mandanten" in html
    assert '<option value="de" selected>Deutsch</option>' in html


def test_the_browsers_language_wins_over_the_tenants_and_the_choice_over_both(
    tenant_a: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    client.force_login(make_staff(_german(tenant_a), Role.OPERATIONS, is_staff=True))

    browser = client.get("/admin/", headers={"accept-language": "fr-CH,fr;q=0.9,en;q=0.5"})
    chosen = client.post("/i18n/setlang/", {"language": "en", "next": "/admin/"})
    after = client.get("/admin/", headers={"accept-language": "fr-CH,fr;q=0.9"})

    assert browser.headers["Content-Language"] == "fr"
    assert "Console d\u2019exploitation" in browser.content.decode()
    assert (chosen.status_code, chosen.headers["Location"]) == (302, "/admin/")
    assert after.headers["Content-Language"] == "en"
    assert "Operations console" in after.content.decode()


def test_a_language_we_do_not_ship_falls_through(
    tenant_a: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    client.force_login(make_staff(_german(tenant_a), Role.OPERATIONS, is_staff=True))
    client.cookies["django_language"] = "xx"

    page = client.get("/admin/", headers={"accept-language": "sv-SE,sv;q=0.9"})

    assert page.status_code == 200
    assert page.headers["Content-Language"] == "de"  # neither Swedish nor "xx": the tenant's German


def test_the_api_stays_english_whatever_the_browser_asks(tenant_a: Tenant) -> None:
    answer = Client().get("/api/v1/tenants/", headers={"accept-language": "de"})

    assert answer.status_code in (401, 403)
    assert "Content-Language" not in answer.headers
    assert answer.json()["code"] in ("not_authenticated", "authentication_failed", "permission_denied")
    assert "Anmelde" not in answer.content.decode()


def test_the_console_pages_speak_german_to_a_german_operator(
    tenant_a: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    # given an operator of a German tenant and one of its chargers
    from tests.stations.factories import ChargePointFactory

    charger = ChargePointFactory(tenant=_german(tenant_a), identity="DE-LP-1")
    client.force_login(make_staff(tenant_a, Role.OPERATIONS, is_staff=True))

    index = client.get("/admin/").content.decode()
    listing = client.get("/admin/stations/chargepoint/").content.decode()
    page = client.get(f"/admin/stations/chargepoint/{charger.pk}/change/").content.decode()
    dashboard = client.get("/admin/analytics/dashboard/").content.decode()

    # app and model names, list columns (labels made from field names), templates, the command panel
    assert "Ladestationen" in index
    assert "Ladepunkte" in index
    assert "Ladepunkt zur Änderung auswählen" in listing  # Django's sentence around our model's name
    assert "Kennung" in listing  # the column of `identity`, a label made from the field's name
    assert ">Befehle</h2>" in page
    assert ">Fernstart</a>" in page
    assert "Leistung jetzt" in dashboard
    assert "Ladestationen nach Zustand" in dashboard
    for english in ("Charge points", "Power now", "Chargers by state", "Remote start"):
        assert english not in index + listing + page + dashboard, english


def test_labels_django_derives_from_names_are_translated_too() -> None:
    # a TextChoices member without a label ("Completed"), a model name from its class ("charge point")
    from django.utils import translation

    from apps.sessions.models import ChargingSession
    from apps.stations.models import ChargePoint

    session = ChargingSession(status="completed")
    texts = {}
    for language in ("en", "de", "fr"):
        with translation.override(language):
            texts[language] = (session.get_status_display(), str(ChargePoint._meta.verbose_name_plural))

    assert texts == {
        "en": ("Completed", "charge points"),
        "de": ("Abgeschlossen", "Ladepunkte"),
        "fr": ("Terminée", "points de charge"),
    }


def test_the_sessions_suspicious_reason_filter_is_german(
    tenant_a: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    client.force_login(make_staff(_german(tenant_a), Role.OPERATIONS, is_staff=True))

    html = client.get("/admin/charging/chargingsession/").content.decode()

    for german in ("zu kurz", "keine Energie", "Zeitstempel in der Zukunft", "ohne Stoppmeldung der Ladestation"):
        assert german in html, german
    for english in ("too short", "zero energy", "future timestamp", "closed without stop"):
        assert english not in html, english
