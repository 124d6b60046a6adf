from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.billing.api.views import (
    BankStatementImportViewSet,
    FiservNotificationView,
    InvoicePdfView,
    InvoiceViewSet,
    InvoiceXlsxView,
    PartnerCdrReviewCsvView,
    PartnerCdrReviewViewSet,
    PaymentRuleViewSet,
    PaymentViewSet,
    PayoutViewSet,
)

router = SimpleRouter()
router.register("invoices", InvoiceViewSet, basename="invoice")
router.register("payments", PaymentViewSet, basename="payment")
router.register("payment-rules", PaymentRuleViewSet, basename="payment-rule")
router.register("payouts", PayoutViewSet, basename="payout")
router.register("roaming-cdrs", PartnerCdrReviewViewSet, basename="roaming-cdr")

urlpatterns = [
    # before the router, whose payments/<pk>/ would otherwise take these for primary keys
    path(
        "payments/bank-statement/",
        BankStatementImportViewSet.as_view({"post": "create"}),
        name="payment-bank-statement",
    ),
    path("roaming-cdrs/export/", PartnerCdrReviewCsvView.as_view(), name="roaming-cdr-export"),
    path("invoices/<int:pk>/pdf/", InvoicePdfView.as_view(), name="invoice-pdf"),
    path("invoices/<int:pk>/xlsx/", InvoiceXlsxView.as_view(), name="invoice-xlsx"),
    path("payment-notifications/fiserv/", FiservNotificationView.as_view(), name="payment-notification-fiserv"),
    *router.urls,
]
