"""WebSocket routes of every app, assembled at the top (the project may import any layer)."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
