"""A tenant with a full history behind its network and customers, for the deletion walkers (tests/test_history.py).

One completed, billed and paid session links everything a session can point to (location -> charge point -> EVSE
-> connector, token, driver, business customer, contract, vehicle, tariff); around it every kind of audit row
(commands and their events, OCPP frames, status events, session events, anomalies, invoice and payment events,
webhook deliveries and attempts, grid signals, load readings, recomputes and allocations, KPI facts).
`World.instance_of(model)` hands the walkers the row of each model; a model the walkers meet that is missing
here fails them, so a route added later is covered too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.db import models

from apps.analytics.models import AlertRule, DeliveryAttempt, NotificationEvent, SessionFact, WebhookDelivery
from apps.billing import services as billing_services
from apps.billing.models import Invoice, InvoiceEvent, Payment, PaymentEvent, PaymentStatus
from apps.core.models import History
from apps.customers.models import TokenSource
from apps.energy.models import Allocation, GridSignal, NodeKind, SiteRecompute, Strategy
from apps.ocpp.models import MessageLog
from apps.roaming.models import (
    EmspAuthorization,
    EmspCommand,
    HubClientInfo,
    PartnerReservation,
    PartnerToken,
    PullState,
    RoamingCommand,
)
from apps.sessions.models import (
    ChargingSession,
    MeterValue,
    PartnerCdr,
    PartnerSession,
    PartnerSessionState,
    Reservation,
    ReservationStatus,
    SessionEvent,
    SessionStatus,
    SignedMeterValue,
    TransactionAnomaly,
)
from apps.stations.models import (
    CommandEvent,
    CommandStatus,
    PartnerConnector,
    PartnerEvse,
    PartnerEvseStatus,
    PartnerLocation,
    StatusEvent,
)
from apps.tariffs.models import PartnerTariff, RoamingRetailRule
from apps.tenants.models import Role, Tenant, User
from tests.analytics.factories import AlertFactory, AlertRuleFactory, WebhookSubscriptionFactory
from tests.billing.factories import PaymentFactory, PaymentRuleFactory, PayoutFactory, price
from tests.charging.factories import CdrFactory
from tests.customers.factories import (
    BusinessCustomerFactory,
    ContractFactory,
    DriverFactory,
    TokenFactory,
    VehicleFactory,
)
from tests.energy.factories import BuildingLoadReadingFactory, GridNodeFactory, GridSignalFactory, TimeOfUseLimitFactory
from tests.ocpp.factories import MessageLogFactory
from tests.reports.factories import ExportJobFactory
from tests.roaming.factories import partner_for
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
)
from tests.stations.factories import certificate_authority as certificate_authority_for
from tests.tariffs.factories import ContractPriceListFactory, TariffAssignmentFactory, TariffFactory
from tests.tenants.factories import ApiKeyFactory, InvitationFactory, MembershipFactory, UserFactory

START = dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC)


@dataclass
class World:
    tenant: Tenant
    staff: User
    membership: Any
    api_key: Any
    invitation: Any
    location: Any
    charge_point: Any
    evse: Any
    connector: Any
    business_customer: Any
    contract: Any
    driver: Any
    token: Any
    vehicle: Any
    tariff: Any
    tariff_assignment: Any
    price_list: Any
    session: ChargingSession
    cdr: Any
    invoice: Invoice
    payment: Payment
    payment_rule: Any
    payout: Any
    site: Any
    cp_node: Any
    tou_limit: Any
    grid_signal: GridSignal
    load_reading: Any
    recompute: SiteRecompute
    allocation: Allocation
    command: Any
    command_event: CommandEvent
    status_event: StatusEvent
    message_log: MessageLog
    session_event: SessionEvent
    meter_value: MeterValue
    signed_value: SignedMeterValue
    anomaly: TransactionAnomaly
    reservation: Reservation
    alert_rule: AlertRule
    alert: Any
    invoice_event: InvoiceEvent
    payment_event: PaymentEvent
    subscription: Any
    notification: NotificationEvent
    delivery: WebhookDelivery
    attempt: DeliveryAttempt
    session_fact: SessionFact
    export_job: Any
    firmware_image: Any
    firmware_campaign: Any
    diagnostics: Any
    security_event: Any
    signing_request: Any
    installed_certificate: Any
    certificate_authority: Any
    roaming_partner: Any
    roaming_command: Any
    partner_token: Any
    partner_reservation: Any
    emsp_authorization: Any
    partner_location: PartnerLocation
    partner_evse: PartnerEvse
    partner_connector: PartnerConnector
    partner_tariff: PartnerTariff
    partner_session: PartnerSession
    partner_cdr: PartnerCdr
    emsp_command: EmspCommand
    hub_client: HubClientInfo
    pull_state: PullState
    retail_rule: RoamingRetailRule
    oicp_connection: Any

    def instance_of(self, model: type[models.Model]) -> models.Model:
        concrete = model._meta.concrete_model
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, models.Model) and type(value)._meta.concrete_model is concrete:
                return type(value)._default_manager.get(pk=value.pk)  # fresh from the database
        raise AssertionError(
            f"tests/history_world.py has no {model.__name__}: add one (with its history) so the deletion walkers "
            "cover its routes and admin pages."
        )


def build_world(tenant: Tenant) -> World:
    staff = UserFactory()
    membership = MembershipFactory(tenant=tenant, user=staff, role=Role.OPERATIONS)
    api_key = ApiKeyFactory(tenant=tenant)
    invitation = InvitationFactory(tenant=tenant, invited_by=staff, invited_by_key=api_key)
    location = LocationFactory(tenant=tenant, name="Depot Nord")
    charge_point = ChargePointFactory(tenant=tenant, location=location)
    evse = EvseFactory(charge_point=charge_point, connector_id=1)
    connector = ConnectorFactory(evse=evse)
    business_customer = BusinessCustomerFactory(tenant=tenant)
    contract = ContractFactory(tenant=tenant, business_customer=business_customer)
    driver = DriverFactory(tenant=tenant, business_customer=business_customer)
    token = TokenFactory(tenant=tenant, driver=driver, business_customer=business_customer, business_contract=contract)
    vehicle = VehicleFactory(tenant=tenant, driver=driver)
    tariff = TariffFactory(tenant=tenant)
    tariff_assignment = TariffAssignmentFactory(tenant=tenant, tariff=TariffFactory(tenant=tenant), location=location)
    price_list = ContractPriceListFactory(tenant=tenant, business_customer=business_customer)

    session = ChargingSession.objects.create(
        tenant=tenant,
        charge_point=charge_point,
        evse=evse,
        evse_connector=connector,
        location=location,
        connector_id=1,
        id_tag=token.uid[:20],
        auth_status="Accepted",
        status=SessionStatus.COMPLETED,
        started_at=START,
        stopped_at=START + dt.timedelta(minutes=45),
        meter_start_wh=1_000_000,
        meter_stop_wh=1_022_500,
        energy_wh=22_500,
        token=token,
        driver=driver,
        business_customer=business_customer,
        contract=contract,
        vehicle=vehicle,
        tariff=tariff,
        currency="EUR",
        cost_excl_vat=Decimal("10.00"),
        cost_incl_vat=Decimal("11.90"),
    )
    session_event = SessionEvent.objects.create(session=session, to_status=SessionStatus.COMPLETED, reason="test")
    meter_value = MeterValue.objects.create(
        session=session, charge_point=charge_point, connector_id=1, timestamp=START, value=Decimal("1000000"), unit="Wh"
    )
    signed_value = SignedMeterValue.objects.create(
        session=session, charge_point=charge_point, connector_id=1, timestamp=START, data="OCMF|{}|{}"
    )
    anomaly = TransactionAnomaly.objects.create(
        tenant=tenant, charge_point=charge_point, session=session, kind=TransactionAnomaly.Kind.DUPLICATE_STOP
    )
    cdr = CdrFactory(session=session, tenant=tenant)
    reservation = Reservation.objects.create(
        tenant=tenant,
        charge_point=charge_point,
        connector_id=1,
        driver=driver,
        token=token,
        vehicle=vehicle,
        id_tag=token.uid[:20],
        starts_at=START - dt.timedelta(minutes=10),
        expires_at=START + dt.timedelta(minutes=20),
        status=ReservationStatus.USED,
    )

    invoice = billing_services.invoice_create_draft(
        tenant=tenant,
        period_start=dt.date(2026, 3, 1),
        period_end=dt.date(2026, 3, 31),
        priced_sessions=[(session, price())],
        business_customer=business_customer,
        actor=staff,
    )
    invoice = billing_services.invoice_issue(invoice=invoice, render=False, actor=staff)
    payment = PaymentFactory(
        tenant=tenant, invoice=invoice, status=PaymentStatus.CAPTURED, amount_captured=invoice.total_incl_vat
    )
    payment_event = PaymentEvent.objects.create(
        tenant=tenant,
        payment=payment,
        action="captured",
        from_status=PaymentStatus.AUTHORIZED,
        to_status=payment.status,
    )
    invoice_event = invoice.events.order_by("pk").first()
    payment_rule = PaymentRuleFactory(tenant=tenant, location=location)
    payout = PayoutFactory(tenant=tenant, rule=payment_rule)

    command = CommandFactory(charge_point=charge_point, requested_by=staff, status=CommandStatus.ACCEPTED)
    command_event = CommandEvent.objects.create(command=command, status=CommandStatus.ACCEPTED)
    status_event = StatusEvent.objects.create(
        charge_point=charge_point, connector_id=1, status="Available", timestamp=START
    )
    message_log = MessageLogFactory(charge_point=charge_point, tenant=tenant)

    site = GridNodeFactory(tenant=tenant, location=location, strategy=Strategy.EQUAL_SHARE)
    cp_node = GridNodeFactory(
        tenant=tenant, location=location, parent=site, kind=NodeKind.CHARGE_POINT, charge_point=charge_point
    )
    tou_limit = TimeOfUseLimitFactory(node=site)
    grid_signal = GridSignalFactory(node=site, created_by=staff, api_key=api_key)
    load_reading = BuildingLoadReadingFactory(node=site)
    recompute = SiteRecompute.objects.create(tenant=tenant, site=site, at=START, strategy=Strategy.EQUAL_SHARE)
    allocation = Allocation.objects.create(
        tenant=tenant,
        recompute=recompute,
        session=session,
        charge_point=charge_point,
        connector_id=1,
        at=START,
        limit=Decimal("16.0"),
        unit="A",
        power_w=11_000,
        current_l1_a=Decimal("16.00"),
        current_l2_a=Decimal("16.00"),
        current_l3_a=Decimal("16.00"),
        reason="share",
        explanation="equal share",
    )

    alert_rule = AlertRuleFactory(tenant=tenant)
    alert = AlertFactory(tenant=tenant, rule=alert_rule)
    subscription = WebhookSubscriptionFactory(tenant=tenant)
    notification = NotificationEvent.objects.create(tenant=tenant, type="session.completed", payload={"id": 1})
    delivery = WebhookDelivery.objects.create(tenant=tenant, subscription=subscription, event=notification)
    attempt = DeliveryAttempt.objects.create(delivery=delivery, number=1, status_code=200, succeeded=True)
    session_fact = SessionFact.objects.create(
        tenant=tenant,
        kind=SessionFact.Kind.ENDED,
        session_id=session.pk,
        charge_point_id=charge_point.pk,
        location_id=location.pk,
        connector_id=1,
        started_at=START,
        stopped_at=START,
        at=START,
    )
    export_job = ExportJobFactory(tenant=tenant)
    firmware_image = FirmwareImageFactory(tenant=tenant)
    firmware_campaign = FirmwareCampaignFactory(tenant=tenant, firmware=firmware_image)
    diagnostics = DiagnosticsUploadFactory(charge_point=charge_point, tenant=tenant)
    security_event = SecurityEventFactory(charge_point=charge_point)
    signing_request = CertificateSigningRequestFactory(charge_point=charge_point, command=command)
    installed_certificate = InstalledCertificateFactory(
        charge_point=charge_point, not_after=START + dt.timedelta(days=365)
    )
    certificate_authority = certificate_authority_for(tenant)
    roaming_partner, _ = partner_for(tenant, country_code="NL", party_id="HWP")
    roaming_partner.last_handshake_at = START
    roaming_partner.save(update_fields=["last_handshake_at"])
    ChargingSession.objects.filter(pk=session.pk).update(roaming_partner=roaming_partner.party)  # a foreign driver
    # what the partner sent: a command, a token, a reservation (read-only in the admin)
    roaming_command = RoamingCommand.objects.create(
        partner=roaming_partner,
        command="STOP_SESSION",
        request={"session_id": str(session.pk), "response_url": "http://127.0.0.1:9/r/hw"},
        response_url="http://127.0.0.1:9/r/hw",
        charge_point=charge_point,
        session_id=session.pk,
    )
    partner_token = PartnerToken.objects.create(
        partner=roaming_partner,
        token=TokenFactory(tenant=tenant, source=TokenSource.ROAMING, country_code="NL", party_id="HWP"),
        last_updated=START,
    )
    partner_reservation = PartnerReservation.objects.create(
        partner=roaming_partner,
        their_reservation_id="HWP-RES-1",
        charge_point=charge_point,
        reservation=Reservation.objects.create(
            tenant=tenant,
            charge_point=charge_point,
            connector_id=2,
            id_tag="HWP1",
            starts_at=START,
            expires_at=START + dt.timedelta(minutes=30),
            status=ReservationStatus.EXPIRED,
        ),
    )
    # what our drivers pay on that partner's EVSEs
    retail_rule = RoamingRetailRule.objects.create(
        tenant=tenant, partner=roaming_partner, mode="markup", markup_percent=10
    )

    # a CPO partner's real-time authorization of one of our tokens (read-only in the admin)
    emsp_authorization = EmspAuthorization.objects.create(
        tenant=tenant,
        partner=roaming_partner,
        token=TokenFactory(tenant=tenant, uid="HWP-AUTHZ"),
        allowed="ALLOWED",
        reason="accepted",
        authorization_reference="HWPREF0001",
        location_id="LOC1",
    )

    # the partner's network as it sent it (we are eMSP): a station, its tariff, our driver's session there and its
    # CDR, our command, a party behind the partner as hub, the pull bookkeeping
    partner_location = PartnerLocation.objects.create(
        tenant=tenant,
        partner=roaming_partner,
        country_code="NL",
        party_id="HWP",
        ocpi_id="HWP-LOC-1",
        name="Havenweg",
        address="Havenweg 1",
        city="Utrecht",
        postal_code="3542 AD",
        country="NLD",
        latitude=Decimal("52.100000"),
        longitude=Decimal("5.100000"),
        operator_name="Havenweg Power",
        last_updated=START,
    )
    partner_evse = PartnerEvse.objects.create(
        location=partner_location,
        uid="HWP-EVSE-1",
        evse_id="NL*HWP*E1*1",
        status=PartnerEvseStatus.AVAILABLE,
        last_updated=START,
    )
    partner_connector = PartnerConnector.objects.create(
        evse=partner_evse,
        connector_id="1",
        standard="IEC_62196_T2",
        format="SOCKET",
        power_type="AC_3_PHASE",
        max_voltage=230,
        max_amperage=32,
        tariff_ids=["HWP-T1"],
        last_updated=START,
    )
    partner_tariff = PartnerTariff.objects.create(
        tenant=tenant,
        partner=roaming_partner,
        country_code="NL",
        party_id="HWP",
        ocpi_id="HWP-T1",
        currency="EUR",
        data={"elements": [{"price_components": [{"type": "ENERGY", "price": 0.40, "step_size": 1}]}]},
        last_updated=START,
    )
    partner_session = PartnerSession.objects.create(
        tenant=tenant,
        partner=roaming_partner,
        country_code="NL",
        party_id="HWP",
        ocpi_id="HWP-S1",
        authorization_reference="OURREF0001",
        state=PartnerSessionState.COMPLETED,
        token=token,
        driver=driver,
        business_customer=business_customer,
        contract=contract,
        location=partner_location,
        location_ocpi_id=partner_location.ocpi_id,
        evse_uid=partner_evse.uid,
        connector_id="1",
        start_date_time=START,
        end_date_time=START + dt.timedelta(minutes=30),
        kwh=Decimal("10.0000"),
        currency="EUR",
        total_cost_excl_vat=Decimal("4.0000"),
        last_updated=START,
    )
    partner_cdr = PartnerCdr.objects.create(
        tenant=tenant,
        partner=roaming_partner,
        country_code="NL",
        party_id="HWP",
        ocpi_id="HWP-CDR-1",
        session=partner_session,
        session_ocpi_id="HWP-S1",
        authorization_reference="OURREF0001",
        token=token,
        driver=driver,
        business_customer=business_customer,
        start_date_time=START,
        end_date_time=START + dt.timedelta(minutes=30),
        currency="EUR",
        total_energy=Decimal("10.0000"),
        total_time=Decimal("0.500000"),
        total_cost_excl_vat=Decimal("4.0000"),
        review=PartnerCdr.Review.OK,
        data={"id": "HWP-CDR-1"},
        last_updated=START,
    )
    emsp_command = EmspCommand.objects.create(
        partner=roaming_partner,
        session=partner_session,
        uid="HWP-CMD-1",
        command="START_SESSION",
        request={"response_url": "http://127.0.0.1:9/r/HWP-CMD-1"},
        deadline=START + dt.timedelta(minutes=1),
    )
    hub_client = HubClientInfo.objects.create(
        partner=roaming_partner, country_code="BE", party_id="BEC", role="CPO", status="CONNECTED", last_updated=START
    )
    pull_state = PullState.objects.create(
        partner=roaming_partner,
        module="locations",
        synced_from=START,
        last_attempt_at=START,
        last_success_at=START,
        last_push_at=START,
        last_count=1,
    )

    # the tenant's Hubject connection (its certificate's expiry is a date in the admin list)
    oicp_connection = oicp_connection_for(tenant)

    return World(**{name: value for name, value in locals().items() if name in World.__dataclass_fields__})


def history_models() -> list[type[models.Model]]:
    return sorted(
        (m for m in apps.get_models() if issubclass(m, History) and not m._meta.proxy), key=lambda m: m._meta.label
    )


def history_snapshot(exclude: tuple[str, ...] = ()) -> dict[str, list[dict[str, Any]]]:
    """Every stored row of every history model (sessions, CDRs, invoices and lines, payments, audit logs ...)."""
    return {
        m._meta.label: list(m._base_manager.order_by("pk").values())
        for m in history_models()
        if m._meta.label not in exclude
    }


def referenced_by_history(obj: models.Model) -> list[str]:
    """The history rows whose foreign keys point at `obj` (read straight from the rows, not from the code under
    test), e.g. ["charging.ChargingSession 17.location"]."""
    found = []
    for model in history_models():
        for field in model._meta.concrete_fields:
            if field.is_relation and field.related_model._meta.concrete_model is type(obj)._meta.concrete_model:
                for pk in model._base_manager.filter(**{field.attname: obj.pk}).values_list("pk", flat=True):
                    found.append(f"{model._meta.label} {pk}.{field.name}")
    return found
