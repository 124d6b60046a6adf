"""The CDR of a completed session: OCPI numbers stored as exact JSON numbers, and immutable in the database."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from apps.sessions import services
from apps.sessions.models import Cdr
from apps.tenants.models import Role, Tenant
from tests.charging.factories import CdrFactory
from tests.customers.factories import TokenFactory
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory
from tests.tariffs.factories import TariffAssignmentFactory, TariffFactory

pytestmark = pytest.mark.django_db

ELEMENTS = [
    {
        "price_components": [
            {"type": "ENERGY", "price": "0.3900", "vat": "19", "step_size": 1},
            {"type": "TIME", "price": "1.20", "vat": "19", "step_size": 60},
            {"type": "FLAT", "price": "0.50", "vat": "19", "step_size": 1},
        ]
    }
]


def _completed_cdr(tenant: Tenant) -> Cdr:
    cp = ChargePointFactory(tenant=tenant)
    ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=1), max_electric_power=22_000)
    TariffAssignmentFactory(tenant=tenant, tariff=TariffFactory(tenant=tenant, elements=ELEMENTS))
    TokenFactory(tenant=tenant, uid="CDR-1")
    start = timezone.now().replace(microsecond=0) - dt.timedelta(hours=2)
    session, info = services.session_start(
        charge_point_id=cp.pk, connector_id=1, id_tag="CDR-1", meter_start=1_000, timestamp=start
    )
    assert info.status == "Accepted"
    services.session_stop(
        charge_point_id=cp.pk,
        transaction_id=session.pk,
        meter_stop=11_000,
        timestamp=start + dt.timedelta(hours=1),
        reason="Local",
    )
    services.session_completion(session_id=session.pk)  # what the stop's SessionStopped delivery does
    return Cdr.objects.get(session=session)


def _json_types(cdr: Cdr) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT jsonb_typeof(total_cost->'excl_vat'), jsonb_typeof(total_cost->'incl_vat'),
                      (total_cost->>'excl_vat'), (total_cost->>'incl_vat'),
                      jsonb_typeof(total_energy_cost->'excl_vat'), (total_energy_cost->>'excl_vat'),
                      jsonb_typeof(total_time_cost->'excl_vat'), jsonb_typeof(total_fixed_cost->'excl_vat'),
                      jsonb_typeof(charging_periods->0->'dimensions'->0->'volume'),
                      (tariffs->0->'elements'->0->'price_components'->0->>'price'),
                      jsonb_typeof(tariffs->0->'elements'->0->'price_components'->0->'price'),
                      jsonb_typeof(tariffs->0->'elements'->0->'price_components'->0->'vat'),
                      jsonb_typeof(tariffs->0->'last_updated')
               FROM charging_cdr WHERE id = %s""",
            [cdr.pk],
        )
        row = cursor.fetchone()
    keys = [
        "total_excl_type",
        "total_incl_type",
        "total_excl",
        "total_incl",
        "energy_excl_type",
        "energy_excl",
        "time_type",
        "fixed_type",
        "volume_type",
        "price",
        "price_type",
        "vat_type",
        "last_updated_type",
    ]
    return dict(zip(keys, row, strict=True))


def test_the_cdr_stores_ocpi_numbers_as_exact_json_numbers(tenant_a: Tenant) -> None:
    cdr = _completed_cdr(tenant_a)

    stored = _json_types(cdr)
    cdr.refresh_from_db()
    session = cdr.session

    assert stored == {
        "total_excl_type": "number",
        "total_incl_type": "number",
        "total_excl": "5.60",  # 3.90 energy + 1.20 time + 0.50 flat, money rounded by the engine
        "total_incl": "6.67",
        "energy_excl_type": "number",
        "energy_excl": "3.90",  # 10 kWh x 0.3900
        "time_type": "number",
        "fixed_type": "number",
        "volume_type": "number",
        "price": "0.3900",  # the tariff's price digit for digit, not a float
        "price_type": "number",
        "vat_type": "number",
        "last_updated_type": "string",
    }
    assert (session.cost_excl_vat, session.cost_incl_vat) == (Decimal("5.60"), Decimal("6.67"))
    # read back as Decimal, equal to the session's cost
    assert cdr.total_cost == {"excl_vat": session.cost_excl_vat, "incl_vat": session.cost_incl_vat}
    assert isinstance(cdr.total_cost["excl_vat"], Decimal)
    assert cdr.tariffs[0]["elements"][0]["price_components"][0]["price"] == Decimal("0.3900")
    assert cdr.charging_periods == [
        {
            "start_date_time": session.started_at.isoformat().replace("+00:00", "Z"),
            "dimensions": [
                {"type": "ENERGY", "volume": Decimal("10")},
                {"type": "TIME", "volume": Decimal("1.000000")},
                {"type": "MIN_POWER", "volume": Decimal("10")},
                {"type": "MAX_POWER", "volume": Decimal("10")},
            ],
            "tariff_id": cdr.tariffs[0]["id"],
        }
    ]
    assert cdr.energy_wh == 10_000


def test_the_cdr_api_renders_amounts_as_decimal_strings(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    cdr = _completed_cdr(tenant_a)

    response = client_for(tenant_a, Role.FINANCE).get(f"/api/v1/cdrs/{cdr.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert (body["total_cost"], body["total_energy_cost"]) == (
        {"excl_vat": "5.60", "incl_vat": "6.67"},
        {"excl_vat": "3.90", "incl_vat": "4.64"},
    )
    assert body["tariffs"][0]["elements"][0]["price_components"][0]["price"] == "0.3900"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE charging_cdr SET energy_wh = energy_wh + 1 WHERE id = %s",
        'UPDATE charging_cdr SET total_cost = \'{"excl_vat": 0, "incl_vat": 0}\' WHERE id = %s',
        "DELETE FROM charging_cdr WHERE id = %s",
    ],
)
def test_the_database_refuses_to_change_or_delete_a_cdr(statement: str, tenant_a: Tenant) -> None:
    cdr = _completed_cdr(tenant_a)
    before = list(Cdr.objects.filter(pk=cdr.pk).values())

    with pytest.raises(IntegrityError, match="A CDR is immutable"), transaction.atomic(), connection.cursor() as c:
        c.execute(statement, [cdr.pk])

    assert list(Cdr.objects.filter(pk=cdr.pk).values()) == before


def test_the_orm_cannot_delete_a_cdr_either(tenant_a: Tenant) -> None:
    cdr = CdrFactory(session__charge_point=ChargePointFactory(tenant=tenant_a))

    with pytest.raises(IntegrityError, match="A CDR is immutable"), transaction.atomic():
        Cdr.objects.filter(pk=cdr.pk).delete()

    assert Cdr.objects.filter(pk=cdr.pk).count() == 1


def test_the_migration_turns_stored_decimal_strings_into_numbers(tenant_a: Tenant) -> None:
    migration = importlib.import_module("apps.sessions.migrations.0004_cdr_json_numbers_no_delete")
    old = CdrFactory(
        session__charge_point=ChargePointFactory(tenant=tenant_a),
        total_cost={"excl_vat": "5.6000", "incl_vat": "6.6640"},
        total_energy_cost={"excl_vat": "3.9000", "incl_vat": "4.6410"},
        charging_periods=[
            {"start_date_time": "2026-01-01T10:00:00Z", "dimensions": [{"type": "ENERGY", "volume": "10"}]}
        ],
        tariffs=[{"id": "T-1", "elements": [{"price_components": [{"type": "ENERGY", "price": "0.39", "vat": "19"}]}]}],
        cdr_token={"uid": "ABC", "contract_id": "12"},
    )

    with connection.cursor() as cursor:  # what the migration's operations do around its data step
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE; ALTER TABLE charging_cdr DISABLE TRIGGER charging_cdr_no_update")
        migration.cdr_numbers(django_apps, None)
        cursor.execute("ALTER TABLE charging_cdr ENABLE TRIGGER charging_cdr_no_update")
        cursor.execute(
            "SELECT total_cost::text, charging_periods->0->'dimensions'->0->>'volume', "
            "jsonb_typeof(tariffs->0->'elements'->0->'price_components'->0->'price'), cdr_token::text "
            "FROM charging_cdr WHERE id = %s",
            [old.pk],
        )
        total_cost, volume, price_type, token = cursor.fetchone()

    assert total_cost == '{"excl_vat": 5.6000, "incl_vat": 6.6640}'
    assert (volume, price_type) == ("10", "number")
    assert token == '{"uid": "ABC", "contract_id": "12"}'  # strings that OCPI types as strings stay strings
    old.refresh_from_db()
    assert old.total_energy_cost == {"excl_vat": Decimal("3.9000"), "incl_vat": Decimal("4.6410")}
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:  # trigger is back
        cursor.execute("UPDATE charging_cdr SET remark = 'x' WHERE id = %s", [old.pk])
