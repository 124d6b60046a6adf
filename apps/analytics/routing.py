"""WebSocket routes of analytics (included by evplatform/routing.py)."""

from django.urls import URLPattern, re_path

from apps.analytics.consumers import DashboardConsumer

websocket_urlpatterns: list[URLPattern] = [
    re_path(r"^ws/dashboard/?$", DashboardConsumer.as_asgi()),
]
