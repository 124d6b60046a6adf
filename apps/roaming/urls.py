from rest_framework.routers import SimpleRouter

from apps.roaming.api.views import RoamingPartnerViewSet

router = SimpleRouter()
router.register("roaming-partners", RoamingPartnerViewSet, basename="roaming-partner")

urlpatterns = router.urls
