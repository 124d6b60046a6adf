"""WebSocket routes of charging sessions (included by evplatform/routing.py)."""

from django.urls import URLPattern, re_path

from apps.sessions.consumers import SessionConsumer

websocket_urlpatterns: list[URLPattern] = [
    re_path(r"^ws/sessions/(?P<session_id>\d+)/?$", SessionConsumer.as_asgi()),
]
