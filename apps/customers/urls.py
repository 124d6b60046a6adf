from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.customers.api.views import (
    BusinessCustomerViewSet,
    ContractViewSet,
    DriverViewSet,
    TokenImportViewSet,
    TokenViewSet,
    VehicleViewSet,
)

router = SimpleRouter()
router.register("drivers", DriverViewSet, basename="driver")
router.register("business-customers", BusinessCustomerViewSet, basename="business-customer")
router.register("contracts", ContractViewSet, basename="contract")
router.register("tokens", TokenViewSet, basename="token")
router.register("vehicles", VehicleViewSet, basename="vehicle")

urlpatterns = [
    # before the router, whose tokens/<pk>/ would otherwise take "import" for a primary key
    path("tokens/import/", TokenImportViewSet.as_view({"post": "create"}), name="token-import"),
    *router.urls,
]
