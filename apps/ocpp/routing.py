"""WebSocket routes of the OCPP endpoint (included by evplatform/routing.py)."""

from django.urls import URLPattern, re_path

from apps.ocpp.consumers import OcppConsumer

websocket_urlpatterns: list[URLPattern] = [
    re_path(r"^ocpp/(?P<identity>[^/]+)/?$", OcppConsumer.as_asgi()),
]
