from rest_framework.routers import SimpleRouter

from apps.tenants.api.views import ApiKeyViewSet, InvitationViewSet, StaffUserViewSet, TenantViewSet

router = SimpleRouter()
router.register("tenants", TenantViewSet, basename="tenant")
router.register("staff-users", StaffUserViewSet, basename="staff-user")
router.register("staff-invitations", InvitationViewSet, basename="staff-invitation")
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = router.urls
