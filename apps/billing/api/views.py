from __future__ import annotations

import csv
from typing import Any, ClassVar

import django_filters
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.billing import selectors, services
from apps.billing.api.serializers import (
    AmountSerializer,
    BankStatementSerializer,
    BankTransferSerializer,
    CreditNoteSerializer,
    EmptySerializer,
    InvoiceDetailSerializer,
    InvoiceDraftSerializer,
    InvoiceSerializer,
    InvoiceUpdateSerializer,
    PartnerCdrReviewSerializer,
    PaymentRuleSerializer,
    PaymentSerializer,
    PayoutComputeSerializer,
    PayoutSerializer,
    PayoutStatusSerializer,
    ReasonSerializer,
    StatementReportSerializer,
)
from apps.billing.documents import render_invoice_xlsx
from apps.billing.payments.provider import NotificationRejected
from apps.core.api.parsers import JSONParser
from apps.core.api.serializers import ErrorSerializer
from apps.core.errors import ApplicationError, NotFound
from apps.sessions import reconciliation
from apps.sessions.models import PartnerCdr
from apps.tenants.access import access_for, scope_queryset
from apps.tenants.models import Role, User
from apps.tenants.scoping import ServiceViewSet, TenantScopedGenericViewSet, TenantScopedViewSet

FINANCE_WRITE: tuple[str, ...] = (Role.ADMIN, Role.FINANCE)
ERRORS = {400: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer}


def _actor(request: Request) -> User | None:
    user = getattr(request, "user", None)
    return user if isinstance(user, User) else None


class _FinanceViewSet(TenantScopedViewSet):
    """Read with any role; write as tenant admin or finance, through domain actions (services) only.

    PUT/PATCH/DELETE answer 405 after the lookup (so another tenant's object stays 404 and bad input 400).
    """

    scope_area = "billing"
    write_roles: ClassVar[tuple[str, ...]] = FINANCE_WRITE

    def _input(self, serializer_class: type[serializers.Serializer[Any]], request: Request) -> dict[str, Any]:
        serializer = serializer_class(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def _not_allowed(self, request: Request) -> Response:
        self.get_object()
        if request.method != "DELETE":
            self._input(EmptySerializer, request)
        raise ApplicationError(
            f"{request.method} is not allowed here; use the domain actions.", code="method_not_allowed", status_code=405
        )

    @extend_schema(request=EmptySerializer, responses={405: ErrorSerializer, 404: ErrorSerializer})
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._not_allowed(request)

    @extend_schema(request=EmptySerializer, responses={405: ErrorSerializer, 404: ErrorSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._not_allowed(request)

    @extend_schema(responses={405: ErrorSerializer, 404: ErrorSerializer})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._not_allowed(request)


class InvoiceViewSet(_FinanceViewSet):
    """Invoices, session receipts and credit notes. Issued invoices are immutable; correct them with a credit note."""

    queryset = selectors.invoice_list()
    serializer_class = InvoiceSerializer
    filterset_fields = ["kind", "status", "business_customer", "driver", "period_start", "number"]

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if self.action != "list":
            queryset = queryset.prefetch_related("lines")
        return queryset

    def get_serializer_class(self) -> Any:
        return InvoiceDetailSerializer if self.action == "retrieve" else InvoiceSerializer

    @extend_schema(
        request=InvoiceDraftSerializer,
        responses={201: InvoiceDetailSerializer, **ERRORS},
        description="Create a draft invoice of a business customer's priced, not yet billed sessions in the period.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self._input(InvoiceDraftSerializer, request)
        tenant = self.resolve_tenant(data.get("tenant"))
        invoice = services.invoice_draft_for_customer(
            tenant=tenant,
            business_customer=data["business_customer"],
            period_start=data["period_start"],
            period_end=data["period_end"],
            actor=_actor(request),
        )
        invoice = selectors.invoice_detail().get(pk=invoice.pk)
        return Response(InvoiceDetailSerializer(invoice).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=InvoiceUpdateSerializer,
        responses={200: InvoiceSerializer, **ERRORS},
        description="Change a draft's notes or due date; issued invoices refuse (409).",
    )
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        invoice = self.get_object()
        data = self._input(InvoiceUpdateSerializer, request)
        invoice = services.invoice_update_draft(invoice=invoice, **data)
        return Response(InvoiceSerializer(invoice).data)

    @extend_schema(
        request=InvoiceUpdateSerializer,
        responses={200: InvoiceSerializer, **ERRORS},
        description="Change a draft's notes or due date; issued invoices refuse (409).",
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, **kwargs)

    @extend_schema(responses={204: None, **ERRORS}, description="Delete a draft; issued invoices refuse (409).")
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.invoice_delete_draft(invoice=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=EmptySerializer,
        responses={200: InvoiceSerializer, **ERRORS},
        description="Issue a draft: assigns the next gapless number of the tenant's year.",
    )
    @action(detail=True, methods=["post"])
    def issue(self, request: Request, pk: str | None = None) -> Response:
        invoice = self.get_object()
        self._input(EmptySerializer, request)
        invoice = services.invoice_issue(invoice=invoice, actor=_actor(request))
        return Response(InvoiceSerializer(invoice).data)

    @extend_schema(
        request=ReasonSerializer,
        responses={200: InvoiceSerializer, **ERRORS},
        description="Void an issued, unpaid invoice (its number stays used).",
    )
    @action(detail=True, methods=["post"])
    def void(self, request: Request, pk: str | None = None) -> Response:
        invoice = self.get_object()
        data = self._input(ReasonSerializer, request)
        invoice = services.invoice_void(invoice=invoice, reason=data["reason"], actor=_actor(request))
        return Response(InvoiceSerializer(invoice).data)

    @extend_schema(
        request=CreditNoteSerializer,
        responses={201: InvoiceSerializer, **ERRORS},
        description="Issue a credit note for the lines at `positions`, or for every line not credited yet; the "
        "invoice becomes `credited` once all its lines are. 400 for unknown or already credited positions.",
    )
    @action(detail=True, methods=["post"], url_path="credit-note")
    def credit_note(self, request: Request, pk: str | None = None) -> Response:
        invoice = self.get_object()
        data = self._input(CreditNoteSerializer, request)
        note = services.invoice_credit_note_create(
            invoice=invoice, reason=data["reason"], positions=data.get("positions"), actor=_actor(request)
        )
        return Response(InvoiceSerializer(note).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=EmptySerializer,
        responses={202: InvoiceSerializer, **ERRORS},
        description="E-mail the invoice with its PDF to the customer (in the background).",
    )
    @action(detail=True, methods=["post"])
    def send(self, request: Request, pk: str | None = None) -> Response:
        invoice = self.get_object()
        self._input(EmptySerializer, request)
        invoice = services.invoice_send(invoice=invoice, actor=_actor(request))
        return Response(InvoiceSerializer(invoice).data, status=status.HTTP_202_ACCEPTED)


class _InvoiceDocumentView(APIView):
    """A document of one invoice, scoped like the invoice API (another tenant's invoice is 404).

    A plain view rather than a viewset action: it answers a file, not JSON."""

    scope_area = "billing"
    content_type: ClassVar[str]

    def _invoice(self, request: Request, pk: int) -> Any:
        invoice = scope_queryset(selectors.invoice_list(), access_for(request), "tenant").filter(pk=pk).first()
        if invoice is None:
            raise NotFound("No such invoice.")
        return invoice


class InvoicePdfView(_InvoiceDocumentView):
    @extend_schema(
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY),
            404: ErrorSerializer,
            409: ErrorSerializer,
        },
        description="The invoice as PDF (rendered on first request if the background job has not yet).",
        operation_id="invoices_pdf",
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        invoice = self._invoice(request, pk)
        response = HttpResponse(services.invoice_pdf_bytes(invoice=invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
        return response


class InvoiceXlsxView(_InvoiceDocumentView):
    @extend_schema(
        responses={
            (200, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"): OpenApiResponse(
                OpenApiTypes.BINARY
            ),
            404: ErrorSerializer,
        },
        description="The invoice's session lines as an Excel annex.",
        operation_id="invoices_xlsx",
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        invoice = self._invoice(request, pk)
        response = HttpResponse(
            render_invoice_xlsx(invoice),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="{invoice.number or invoice.pk}-sessions.xlsx"'
        return response


class PaymentViewSet(_FinanceViewSet):
    """Payments: card (Fiserv) pre-authorisations and captures, bank transfers recorded by finance."""

    queryset = selectors.payment_list()
    serializer_class = PaymentSerializer
    filterset_fields = ["provider", "status", "invoice", "session_id"]

    @extend_schema(
        request=BankTransferSerializer,
        responses={201: PaymentSerializer, **ERRORS},
        description="Record money received by bank transfer / SEPA for an invoice.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self._input(BankTransferSerializer, request)
        invoice = data["invoice"]
        if not self.access.can_write(invoice.tenant_id, self.write_roles):
            self.permission_denied(request)
        payment = services.payment_record_bank_transfer(
            invoice=invoice,
            amount=data["amount"],
            received_on=data["received_on"],
            bank_reference=data["bank_reference"],
            actor=_actor(request),
        )
        return Response(PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=AmountSerializer,
        responses={200: PaymentSerializer, **ERRORS, 503: ErrorSerializer},
        description="Capture the final amount of a pre-authorisation (exactly once).",
    )
    @action(detail=True, methods=["post"])
    def capture(self, request: Request, pk: str | None = None) -> Response:
        payment = self.get_object()
        data = self._input(AmountSerializer, request)
        payment = services.payment_capture(payment=payment, amount=data["amount"])
        return Response(PaymentSerializer(payment).data)

    @extend_schema(
        request=EmptySerializer,
        responses={200: PaymentSerializer, **ERRORS},
        description="Release a pre-authorisation.",
    )
    @action(detail=True, methods=["post"])
    def void(self, request: Request, pk: str | None = None) -> Response:
        payment = self.get_object()
        self._input(EmptySerializer, request)
        return Response(PaymentSerializer(services.payment_void(payment=payment)).data)

    @extend_schema(
        request=AmountSerializer,
        responses={200: PaymentSerializer, **ERRORS},
        description="Refund part or all of a captured card payment.",
    )
    @action(detail=True, methods=["post"])
    def refund(self, request: Request, pk: str | None = None) -> Response:
        payment = self.get_object()
        data = self._input(AmountSerializer, request)
        return Response(PaymentSerializer(services.payment_refund(payment=payment, amount=data["amount"])).data)


class BankStatementImportViewSet(_FinanceViewSet):
    """CSV import of bank statement lines (only `create` is routed)."""

    queryset = selectors.payment_list()
    serializer_class = BankStatementSerializer
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        operation_id="payments_bank_statement_import",
        request={"multipart/form-data": BankStatementSerializer},
        responses={200: StatementReportSerializer, 400: ErrorSerializer},
        description="Import bank statement lines (CSV: date, amount, reference); invoice numbers in the reference "
        "match lines to invoices. Already imported lines are reported, never booked twice.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self._input(BankStatementSerializer, request)
        tenant = self.resolve_tenant(data.get("tenant"))
        report = services.bank_statement_import(tenant=tenant, file=data["file"], actor=_actor(request))
        return Response(StatementReportSerializer(report).data)


class PaymentRuleViewSet(ServiceViewSet):
    """Per-partner payment rules: who pays whom, and the platform fee (flat + %)."""

    queryset = selectors.payment_rule_list()
    serializer_class = PaymentRuleSerializer
    filterset_fields = ["payer", "payee", "location", "is_active"]
    scope_area = "billing"
    write_roles: ClassVar[tuple[str, ...]] = FINANCE_WRITE
    create_service = staticmethod(services.payment_rule_create)
    update_service = staticmethod(services.payment_rule_update)
    instance_kwarg = "rule"
    delete_instead = "deactivate it instead (PATCH is_active: false)"


class PayoutViewSet(_FinanceViewSet):
    """Payout statements for site owners."""

    queryset = selectors.payout_list()
    serializer_class = PayoutSerializer
    filterset_fields = ["rule", "status", "period_start"]

    @extend_schema(
        request=PayoutComputeSerializer,
        responses={201: PayoutSerializer, **ERRORS},
        description="Compute the payout statement of a rule's payee for a period.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self._input(PayoutComputeSerializer, request)
        rule = data["rule"]
        if not self.access.can_write(rule.tenant_id, self.write_roles):
            self.permission_denied(request)
        payout = services.payout_compute(rule=rule, period_start=data["period_start"], period_end=data["period_end"])
        return Response(PayoutSerializer(payout).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=PayoutStatusSerializer,
        responses={200: PayoutSerializer, **ERRORS},
        description="Approve a draft statement, or mark an approved one paid.",
    )
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request: Request, pk: str | None = None) -> Response:
        payout = self.get_object()
        data = self._input(PayoutStatusSerializer, request)
        return Response(PayoutSerializer(services.payout_set_status(payout=payout, status=data["status"])).data)


class FiservNotificationView(APIView):
    """Fiserv Connect's server-to-server notification. No login: trusted only if its hashExtended verifies."""

    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser, MultiPartParser]

    @extend_schema(
        request={"application/x-www-form-urlencoded": {"type": "object", "additionalProperties": {"type": "string"}}},
        responses={200: OpenApiResponse(description="Accepted"), 400: ErrorSerializer, 404: ErrorSerializer},
        description="Server-to-server notification of the hosted payment page (signed form fields).",
        operation_id="payments_fiserv_notification",
    )
    def post(self, request: Request) -> Response:
        data: Any = request.data
        fields = {str(k): str(v) for k, v in data.items()} if hasattr(data, "items") else {}
        try:
            services.payment_notification_handle(fields=fields)
        except NotificationRejected as exc:
            return Response(
                {"code": "notification_rejected", "message": str(exc), "fields": {}}, status=status.HTTP_400_BAD_REQUEST
            )
        return Response({"status": "ok"})


# --------------------------------------------------------------------------- roaming CDR reconciliation (eMSP)


class PartnerCdrReviewFilter(django_filters.FilterSet):
    review = django_filters.ChoiceFilter(choices=PartnerCdr.Review.choices)
    partner = django_filters.NumberFilter(field_name="partner_id")
    credit = django_filters.BooleanFilter()

    class Meta:
        model = PartnerCdr
        fields = ["review", "partner", "credit"]


class PartnerCdrReviewViewSet(TenantScopedGenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Reconciliation of the CDRs other operators sent for our drivers' sessions: the CPO's cost, our retail price
    and margin, and whether the CDR's total matches the CPO's tariff for the CDR's own volumes (`?review=mismatch`).
    `roaming-cdrs/export/` is the same list as CSV; `reconcile` checks one CDR again (after its tariff arrived)."""

    queryset = selectors.partner_cdr_reconciliation_list()
    serializer_class = PartnerCdrReviewSerializer
    filterset_class = PartnerCdrReviewFilter
    scope_area = "billing"
    write_roles: ClassVar[tuple[str, ...]] = FINANCE_WRITE

    @extend_schema(request=EmptySerializer, responses={200: PartnerCdrReviewSerializer, **ERRORS})
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def reconcile(self, request: Request, pk: str | None = None) -> Response:
        cdr = self.get_object()
        if not self.access.can_write(cdr.tenant_id, self.write_roles):
            self.permission_denied(request)
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        reconciliation.partner_cdr_reconcile(cdr=cdr)
        return Response(PartnerCdrReviewSerializer(self.get_queryset().get(pk=cdr.pk)).data)


class PartnerCdrReviewCsvView(APIView):
    """The reconciliation list as CSV, with the list's filters (`?review=mismatch`), scoped like the list. A plain
    view rather than a viewset action: it answers a file, not JSON."""

    scope_area = "billing"

    @extend_schema(
        parameters=[
            OpenApiParameter("review", str, enum=[c for c, _ in PartnerCdr.Review.choices], required=False),
            OpenApiParameter("partner", int, required=False, description="A roaming partner's id."),
            OpenApiParameter("credit", bool, required=False, description="Credit CDRs only, or none."),
        ],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR), 400: ErrorSerializer},
        description="The filtered reconciliation list as CSV (UTF-8, one row per CDR, decimal strings, UTC times).",
        operation_id="roaming_cdrs_export",
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        queryset = scope_queryset(selectors.partner_cdr_reconciliation_list(), access_for(request), "tenant")
        filterset = PartnerCdrReviewFilter(request.query_params, queryset=queryset)
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)

        class Echo:
            def write(self, value: str) -> str:
                return value

        writer = csv.writer(Echo())
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in selectors.reconciliation_csv_rows(filterset.qs)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = 'attachment; filename="roaming-cdr-reconciliation.csv"'
        return response
