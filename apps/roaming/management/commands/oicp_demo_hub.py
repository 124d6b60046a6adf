"""The demo's Hubject (`make run`): the local Hubject (apps/roaming/oicp/hub_sim.py) over HTTPS with mutual TLS, a
CA made at start, with Voltnet connected as CPO (DE*VLT: its EVSE data, status and prices pushed) and Fjordlading
as EMP (NO-FJL: its drivers' tokens pushed, Voltnet's EVSEs pulled into its partner stations at 5.20 NOK/kWh excl.
VAT), so the admin's Hubject connections show live operations and Fjordlading's driver app lists Voltnet's stations
through Hubject.

The hub calls this platform's `/oicp` endpoints over plain HTTP with the headers nginx adds once it verified the
hub's client certificate (`X-SSL-Client-Verify`, `X-SSL-Client-S-DN`): the dev settings trust that subject
(`OICP_INBOUND_CLIENT_DN`, CN=hubject-hbs) on 127.0.0.1 only."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.roaming.management.platform_wait import wait_for
from apps.roaming.models import OicpConnection, OicpOperation
from apps.roaming.oicp import cpo_pricing, cpo_push, emp, emp_auth, services
from apps.roaming.oicp.client import OicpCallFailed
from apps.roaming.oicp.hub_sim import HubSimulator, LocalCA
from apps.tariffs import selectors as tariff_selectors
from apps.tariffs import services as tariff_services
from apps.tenants.models import Tenant

HUB_CN = "hubject-hbs"
CPO_OPERATIONS = [
    OicpOperation.PUSH_EVSE_DATA,
    OicpOperation.PUSH_EVSE_STATUS,
    OicpOperation.AUTHORIZE_START,
    OicpOperation.AUTHORIZE_STOP,
    OicpOperation.CHARGE_DETAIL_RECORD,
    OicpOperation.CHARGING_NOTIFICATIONS,
    OicpOperation.PUSH_PRICING_PRODUCT_DATA,
    OicpOperation.PUSH_EVSE_PRICING,
]
EMP_OPERATIONS = [
    OicpOperation.PULL_EVSE_DATA,
    OicpOperation.PULL_EVSE_STATUS,
    OicpOperation.AUTHORIZE_REMOTE_START,
    OicpOperation.AUTHORIZE_REMOTE_STOP,
    OicpOperation.AUTHORIZE_REMOTE_RESERVATION_START,
    OicpOperation.AUTHORIZE_REMOTE_RESERVATION_STOP,
    OicpOperation.PUSH_AUTHENTICATION_DATA,
    OicpOperation.GET_CHARGE_DETAIL_RECORDS,
]
EMP_RETAIL_PER_KWH = {"EUR": Decimal("0.45"), "NOK": Decimal("5.20")}  # excl. VAT, the EMP tenant's currency


class Command(BaseCommand):
    help = "Run the demo's local Hubject with Voltnet as CPO and Fjordlading as EMP (until Ctrl-C)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--platform", default="http://127.0.0.1:8000", help="This platform's base URL.")
        parser.add_argument("--cpo", default="voltnet", help="The demo tenant (slug) that is CPO at Hubject.")
        parser.add_argument("--emp", default="fjord", help="The demo tenant (slug) that is EMP at Hubject.")
        parser.add_argument("--port", type=int, default=9412)
        parser.add_argument("--ca-dir", default="", help="Where the hub's CA is made (default: .data/hubject-ca).")
        parser.add_argument("--seconds", type=float, default=0, help="Stop after this long (0: run until Ctrl-C).")
        parser.add_argument("--wait", type=float, default=60, help="How long to wait for the platform to answer.")

    def handle(self, *args: Any, **options: Any) -> None:
        cpo = Tenant.objects.filter(slug=options["cpo"]).first()
        emp_tenant = Tenant.objects.filter(slug=options["emp"]).first()
        if cpo is None or emp_tenant is None:
            raise CommandError("The demo tenants are missing: run `manage.py seed_demo` first.")
        platform = options["platform"].rstrip("/")
        wait_for(f"{platform}/healthz", options["wait"])
        ca_dir = Path(options["ca_dir"] or Path(settings.BASE_DIR) / ".data" / "hubject-ca")
        pki = LocalCA(ca_dir, name="Demo Hubject CA")
        hub = HubSimulator(
            ca_file=pki.ca_file,
            server=pki.issue("127.0.0.1", server=True),
            client_pair=pki.issue(HUB_CN),
            partner_verify=False,  # the platform is plain HTTP behind its (here: absent) TLS proxy
            port=options["port"],
        )
        hub.partner_headers = {"X-SSL-Client-Verify": "SUCCESS", "X-SSL-Client-S-DN": f"CN={HUB_CN}"}
        hub.start()
        try:
            operator_id, provider_id = cpo.oicp_operator_id or "DE*VLT", emp_tenant.oicp_provider_id or "NO-FJL"
            hub.add_party(f"{cpo.slug}.cpo", operator_id=operator_id, endpoint=f"{platform}/oicp")
            hub.add_party(f"{emp_tenant.slug}.emp", provider_id=provider_id, endpoint=f"{platform}/oicp")
            as_cpo = self._connection(pki, hub, cpo, f"{cpo.slug}.cpo", operator_id=operator_id, provider_id="")
            as_emp = self._connection(
                pki, hub, emp_tenant, f"{emp_tenant.slug}.emp", operator_id="", provider_id=provider_id
            )
            self._retail_rule(as_emp)
            self._sync(as_cpo, as_emp)
            self.stdout.write(
                f"local Hubject at {hub.url}: {cpo.slug} is CPO {operator_id} ({len(hub.evses)} EVSEs pushed), "
                f"{emp_tenant.slug} is EMP {provider_id} (tokens pushed, EVSE data pulled)"
            )
            deadline = time.monotonic() + options["seconds"] if options["seconds"] else None
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            hub.stop()

    def _connection(
        self, pki: LocalCA, hub: HubSimulator, tenant: Tenant, name: str, *, operator_id: str, provider_id: str
    ) -> OicpConnection:
        """The tenant's Hubject connection pointed at this run's hub, with a certificate of this run's CA."""
        pair = pki.issue(name)
        fields: dict[str, Any] = {
            "environment": "custom",
            "base_url": hub.url,
            "operator_id": operator_id,
            "provider_id": provider_id,
            "server_ca": pki.ca_file.read_text(),
            "enabled_operations": CPO_OPERATIONS if operator_id else EMP_OPERATIONS,
            "enabled": True,
            "hotline_phone_number": "+4930123456" if operator_id else "",
        }
        certificate, key = pair.cert.read_text(), pair.key.read_text()
        existing = OicpConnection.objects.filter(tenant=tenant).first()
        if existing is None:
            return services.oicp_connection_create(
                tenant=tenant, certificate_pem=certificate, key_pem=key, name="Hubject (demo)", **fields
            )
        return services.oicp_connection_update(connection=existing, certificate_pem=certificate, key_pem=key, **fields)

    def _retail_rule(self, connection: OicpConnection) -> None:
        if tariff_selectors.roaming_retail_rule_list().filter(partner=connection.partner).exists():
            return
        tariff_services.roaming_retail_rule_create(
            tenant=connection.tenant,
            partner=connection.partner,
            mode="fixed_kwh",
            price_per_kwh_excl_vat=EMP_RETAIL_PER_KWH.get(connection.tenant.currency, Decimal("0.45")),
            vat_rate=connection.tenant.default_vat_rate,
            currency=connection.tenant.currency,
        )

    def _sync(self, as_cpo: OicpConnection, as_emp: OicpConnection) -> None:
        """The hub starts empty every run: full loads from both sides, then the EMP's full pull."""
        try:
            data = cpo_push.evse_data_sync(connection_id=as_cpo.pk, full=True)
            prices = cpo_pricing.pricing_sync(connection_id=as_cpo.pk, full=True)
            tokens = emp_auth.authentication_data_sync(connection_id=as_emp.pk, full=True)
            pulled = emp.evse_data_pull(connection_id=as_emp.pk, full=True)
        except OicpCallFailed as error:
            raise CommandError(f"The local Hubject refused the demo's first sync: {error}") from error
        self.stdout.write(
            f"Hubject demo sync: {data.inserted} EVSEs pushed ({data.skipped} skipped), {prices.products} pricing "
            f"products ({len(prices.skipped)} tariffs not expressible), {tokens.inserted} tokens pushed, "
            f"{pulled.records} EVSE records pulled into {pulled.locations} partner locations"
        )
