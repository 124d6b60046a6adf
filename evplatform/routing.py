"""WebSocket routes of every app, assembled at the top (the project may import any layer)."""

from django.urls import URLPattern

from apps.analytics.routing import websocket_urlpatterns as analytics_routes
from apps.ocpp.routing import websocket_urlpatterns as ocpp_routes
from apps.sessions.routing import websocket_urlpatterns as session_routes

websocket_urlpatterns: list[URLPattern] = []
websocket_urlpatterns += ocpp_routes  # /ocpp/<identity>: chargers authenticate by HTTP Basic in the consumer
websocket_urlpatterns += analytics_routes  # /ws/dashboard/: ops dashboard, admin session + tenant scope
websocket_urlpatterns += session_routes  # /ws/sessions/<id>: live session view, API key or admin session
