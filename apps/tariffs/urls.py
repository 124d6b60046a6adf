from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.tariffs.api.views import (
    ContractPriceListViewSet,
    RoamingRetailRuleViewSet,
    TariffAssignmentViewSet,
    TariffQuoteViewSet,
    TariffViewSet,
)

router = SimpleRouter()
router.register("tariffs", TariffViewSet, basename="tariff")
router.register("tariff-assignments", TariffAssignmentViewSet, basename="tariff-assignment")
router.register("contract-price-lists", ContractPriceListViewSet, basename="contract-price-list")
router.register("roaming-retail-rules", RoamingRetailRuleViewSet, basename="roaming-retail-rule")

urlpatterns = [
    # its own viewset, so its input serializer is the view's serializer (the route walkers read it from there)
    path("tariffs/<pk>/quote/", TariffQuoteViewSet.as_view({"post": "quote"}), name="tariff-quote"),
    *router.urls,
]
