"""`manage.py oicp_demo_hub` (the demo's local Hubject in `make run`) against a live platform: it connects one tenant
as CPO and another as EMP, and the first syncs go through the hub over mutual TLS (EVSE data and prices pushed,
tokens pushed, EVSE data pulled into the EMP's partner stations); run again (a new `make run`, a new CA), the same
connections are pointed at the new hub and sync again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from apps.roaming.models import OicpAuthenticationState, OicpConnection, OicpEvseState, OicpOperationState
from apps.stations.models import PartnerEvse
from apps.tenants.models import Tenant
from tests.customers.factories import DriverFactory, TokenFactory
from tests.roaming.conftest import Site

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_the_demo_hub_connects_a_cpo_and_an_emp_and_syncs_both(
    ocpi_base: str, site: Site, tenant_b: Tenant, tmp_path: Path, settings: Any
) -> None:
    settings.OICP_INBOUND_CLIENT_DN = "CN=hubject-hbs"
    Tenant.objects.filter(pk=site.tenant.pk).update(oicp_operator_id="DE*ALP")
    Tenant.objects.filter(pk=tenant_b.pk).update(oicp_provider_id="NL-BET", currency="EUR")
    TokenFactory(tenant=tenant_b, driver=DriverFactory(tenant=tenant_b), uid="04A1B2C3D4E5F6", contract_id="")

    for run in range(2):
        call_command(
            "oicp_demo_hub",
            platform=ocpi_base,
            cpo=site.tenant.slug,
            emp=tenant_b.slug,
            port=0,
            seconds=0.1,
            wait=10,
            ca_dir=str(tmp_path / f"ca-{run}"),
        )

    as_cpo = OicpConnection.objects.get(tenant=site.tenant)
    as_emp = OicpConnection.objects.get(tenant=tenant_b)
    assert (as_cpo.operator_id, as_cpo.provider_id, as_emp.operator_id, as_emp.provider_id) == (
        "DE*ALP",
        "",
        "",
        "NL-BET",
    )
    assert OicpEvseState.objects.filter(connection=as_cpo).count() == 2
    assert list(OicpAuthenticationState.objects.filter(connection=as_emp).values_list("record", flat=True)) == [
        {"Identification": {"RFIDMifareFamilyIdentification": {"UID": "04A1B2C3D4E5F6"}}}
    ]
    assert sorted(PartnerEvse.objects.filter(location__tenant=tenant_b).values_list("evse_id", flat=True)) == [
        "DE*ALP*E1*1",
        "DE*ALP*E1*2",
    ]
    outcomes = dict(OicpOperationState.objects.values_list("operation", "last_outcome"))
    for operation in ("PushEvseData", "PushPricingProductData", "PushAuthenticationData", "PullEvseData"):
        assert outcomes[operation] == "ok", outcomes
    # the second run's certificate (a new CA) replaced the first's
    assert as_cpo.server_ca == (tmp_path / "ca-1" / "ca.pem").read_text()
