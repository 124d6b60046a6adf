"""How to make one row of each API/admin model for a given tenant.

The route and admin walkers (tests/test_tenant_isolation.py, tests/test_bad_input.py) visit every registered
API route and admin page; a model without an entry here makes them fail, so every new endpoint gets
the isolation and bad-input checks automatically. Add your model's maker when you add a route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import models

from apps.analytics.models import Alert, AlertRule, WebhookDelivery, WebhookSubscription
from apps.billing.models import Invoice, Payment, PaymentRule, Payout, RoamingCdrReview
from apps.customers.models import BusinessCustomer, Contract, Driver, Token, Vehicle
from apps.energy.models import BuildingLoadReading, GridNode, GridSignal, TimeOfUseLimit
from apps.ocpp.models import MessageLog
from apps.reports.models import ExportJob
from apps.roaming.models import (
    EmspAuthorization,
    HubClientInfo,
    OicpConnection,
    PartnerReservation,
    PartnerToken,
    PullState,
    RoamingCommand,
    RoamingPartner,
)
from apps.sessions.models import Cdr, ChargingSession, PartnerCdr, PartnerSession, Reservation, TransactionAnomaly
from apps.stations.models import (
    CertificateAuthority,
    CertificateSigningRequest,
    ChargePoint,
    Command,
    Connector,
    DiagnosticsUpload,
    Evse,
    FirmwareCampaign,
    FirmwareImage,
    InstalledCertificate,
    Location,
    PartnerConnector,
    PartnerLocation,
    SecurityEvent,
)
from apps.tariffs.models import ContractPriceList, PartnerTariff, RoamingRetailRule, Tariff, TariffAssignment
from apps.tenants.models import ApiKey, Invitation, Membership, Tenant
from tests.analytics.factories import (
    AlertFactory,
    AlertRuleFactory,
    WebhookDeliveryFactory,
    WebhookSubscriptionFactory,
)
from tests.billing.factories import PaymentFactory, PaymentRuleFactory, PayoutFactory, draft_invoice
from tests.charging.factories import CdrFactory, ChargingSessionFactory, ReservationFactory, TransactionAnomalyFactory
from tests.charging.partner_factories import partner, partner_cdr
from tests.customers.factories import (
    BusinessCustomerFactory,
    ContractFactory,
    DriverFactory,
    TokenFactory,
    VehicleFactory,
)
from tests.energy.factories import (
    BuildingLoadReadingFactory,
    GridNodeFactory,
    GridSignalFactory,
    TimeOfUseLimitFactory,
)
from tests.ocpp.factories import MessageLogFactory
from tests.reports.factories import ExportJobFactory
from tests.roaming import emsp_rig
from tests.roaming.factories import (
    emsp_authorization_for,
    partner_for,
    partner_reservation_for,
    partner_session_for,
    partner_token_for,
    roaming_command_for,
)
from tests.roaming.oicp.factories import oicp_connection_for
from tests.stations.factories import (
    CertificateSigningRequestFactory,
    ChargePointFactory,
    CommandFactory,
    ConnectorFactory,
    DiagnosticsUploadFactory,
    EvseFactory,
    FirmwareCampaignFactory,
    FirmwareImageFactory,
    InstalledCertificateFactory,
    LocationFactory,
    SecurityEventFactory,
    certificate_authority,
)
from tests.tariffs.factories import ContractPriceListFactory, TariffAssignmentFactory, TariffFactory
from tests.tenants.factories import ApiKeyFactory, InvitationFactory, MembershipFactory

Maker = Callable[[Tenant], models.Model]

MAKERS: dict[type[models.Model], Maker] = {
    Tenant: lambda tenant: tenant,
    Invoice: lambda tenant: draft_invoice(tenant),
    Payment: lambda tenant: PaymentFactory(tenant=tenant),
    PaymentRule: lambda tenant: PaymentRuleFactory(tenant=tenant),
    Payout: lambda tenant: PayoutFactory(tenant=tenant),
    Membership: lambda tenant: MembershipFactory(tenant=tenant),
    ApiKey: lambda tenant: ApiKeyFactory(tenant=tenant),
    Invitation: lambda tenant: InvitationFactory(tenant=tenant),
    BusinessCustomer: lambda tenant: BusinessCustomerFactory(tenant=tenant),
    Driver: lambda tenant: DriverFactory(tenant=tenant),
    Contract: lambda tenant: ContractFactory(tenant=tenant),
    Token: lambda tenant: TokenFactory(tenant=tenant),
    Vehicle: lambda tenant: VehicleFactory(tenant=tenant),
    Tariff: lambda tenant: TariffFactory(tenant=tenant),
    TariffAssignment: lambda tenant: TariffAssignmentFactory(tenant=tenant),
    ContractPriceList: lambda tenant: ContractPriceListFactory(tenant=tenant),
    AlertRule: lambda tenant: AlertRuleFactory(tenant=tenant),
    Alert: lambda tenant: AlertFactory(tenant=tenant),
    WebhookSubscription: lambda tenant: WebhookSubscriptionFactory(tenant=tenant),
    WebhookDelivery: lambda tenant: WebhookDeliveryFactory(tenant=tenant),
    ExportJob: lambda tenant: ExportJobFactory(tenant=tenant),
    Location: lambda tenant: LocationFactory(tenant=tenant),
    ChargePoint: lambda tenant: ChargePointFactory(tenant=tenant),
    Evse: lambda tenant: EvseFactory(charge_point=ChargePointFactory(tenant=tenant)),
    Connector: lambda tenant: ConnectorFactory(evse=EvseFactory(charge_point=ChargePointFactory(tenant=tenant))),
    Command: lambda tenant: CommandFactory(charge_point=ChargePointFactory(tenant=tenant)),
    FirmwareImage: lambda tenant: FirmwareImageFactory(tenant=tenant),
    FirmwareCampaign: lambda tenant: FirmwareCampaignFactory(tenant=tenant),
    DiagnosticsUpload: lambda tenant: DiagnosticsUploadFactory(charge_point=ChargePointFactory(tenant=tenant)),
    SecurityEvent: lambda tenant: SecurityEventFactory(charge_point=ChargePointFactory(tenant=tenant)),
    CertificateSigningRequest: lambda tenant: CertificateSigningRequestFactory(
        charge_point=ChargePointFactory(tenant=tenant)
    ),
    InstalledCertificate: lambda tenant: InstalledCertificateFactory(charge_point=ChargePointFactory(tenant=tenant)),
    CertificateAuthority: certificate_authority,
    MessageLog: lambda tenant: MessageLogFactory(charge_point=ChargePointFactory(tenant=tenant)),
    ChargingSession: lambda tenant: ChargingSessionFactory(charge_point=ChargePointFactory(tenant=tenant)),
    Reservation: lambda tenant: ReservationFactory(charge_point=ChargePointFactory(tenant=tenant)),
    Cdr: lambda tenant: CdrFactory(session__charge_point=ChargePointFactory(tenant=tenant)),
    TransactionAnomaly: lambda tenant: TransactionAnomalyFactory(charge_point=ChargePointFactory(tenant=tenant)),
    GridNode: lambda tenant: GridNodeFactory(tenant=tenant),
    TimeOfUseLimit: lambda tenant: TimeOfUseLimitFactory(node=GridNodeFactory(tenant=tenant)),
    GridSignal: lambda tenant: GridSignalFactory(node=GridNodeFactory(tenant=tenant)),
    BuildingLoadReading: lambda tenant: BuildingLoadReadingFactory(node=GridNodeFactory(tenant=tenant)),
    RoamingPartner: lambda tenant: partner_for(tenant)[0],
    RoamingCommand: roaming_command_for,
    PartnerToken: partner_token_for,
    PartnerReservation: partner_reservation_for,
    # what CPO partners sent us as eMSP (read-only admin pages)
    PartnerLocation: emsp_rig.partner_location_for,
    PartnerConnector: emsp_rig.partner_connector_for,
    PartnerTariff: emsp_rig.partner_tariff_for,
    PartnerSession: partner_session_for,  # a driver's reservation: the driver API lists it too
    PartnerCdr: emsp_rig.partner_cdr_for,
    HubClientInfo: emsp_rig.hub_client_for,
    PullState: emsp_rig.pull_state_for,
    EmspAuthorization: emsp_authorization_for,
    RoamingCdrReview: lambda tenant: RoamingCdrReview.objects.get(pk=partner_cdr(partner(tenant)).pk),
    RoamingRetailRule: lambda tenant: RoamingRetailRule.objects.create(tenant=tenant, partner=partner_for(tenant)[0]),
    OicpConnection: oicp_connection_for,
}


def make_for(model: type[models.Model], tenant: Tenant) -> Any:
    try:
        maker = MAKERS[model]
    except KeyError:
        raise AssertionError(
            f"No maker for {model.__name__} in tests/registry.py: add one so the walkers cover its routes."
        ) from None
    return maker(tenant)


def snapshot(obj: models.Model) -> dict[str, Any]:
    """Every stored column of the row, to prove a refused request changed nothing."""
    row = type(obj)._default_manager.filter(pk=obj.pk).values().first()
    assert row is not None, f"{type(obj).__name__} {obj.pk} vanished"
    return row
