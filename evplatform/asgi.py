"""ASGI entry point: HTTP goes to Django, WebSocket to the Channels consumers (OCPP, live updates).

Chargers (`/ocpp/...`) authenticate by HTTP Basic in their consumer and never carry a Django session: they are
routed without `AuthMiddlewareStack`, which would cost a session/user lookup (a thread hop and queries) per
connect, a lot when a whole fleet reconnects. The browser and API sockets (`/ws/...`) keep it. A WebSocket path
no route takes (a charger configured with `/ocpp16/<id>`, say) is refused with an HTTP 404 naming the expected URL
(`apps.ocpp.routing.wrong_path`), never a 500.

Garbage collector: a daphne holding 1,000 charger sockets spent up to 350 ms in one full (gen2) collection,
stopping every socket (measured with gc.callbacks during benchmarks/ocpp_bench.py: nine gen2 pauses of 50-350
ms in 70 s, the benchmark's p99). Once the application is loaded, everything imported so far (Django, the
apps, the ocpp schemas) is moved out of the collector's sight with `gc.freeze()`, and the thresholds are
raised so that young collections are rarer and full ones happen only after a large growth. Cycles are still
collected; reference counting frees everything else at once as usual.
"""

import gc
import os
from typing import Any

from django.core.asgi import get_asgi_application
from django.urls import re_path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings.dev")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.core.api.middleware import ApiBodyLimit  # noqa: E402
from apps.ocpp.routing import websocket_urlpatterns as ocpp_routes  # noqa: E402
from apps.ocpp.routing import wrong_path  # noqa: E402
from evplatform.routing import websocket_urlpatterns  # noqa: E402

fallback: Any = wrong_path  # an ASGI app, as Channels routes take them (the stubs expect a view)
ocpp_websocket = URLRouter([*ocpp_routes, re_path(r"", fallback)])
authenticated_websocket = AuthMiddlewareStack(URLRouter([*websocket_urlpatterns, re_path(r"", fallback)]))


async def websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    app = ocpp_websocket if path.startswith("/ocpp/") else authenticated_websocket
    await app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": ApiBodyLimit(django_asgi_app),  # an oversize API body is a 413 before Django reads it
        "websocket": websocket,
    }
)

GC_THRESHOLDS = (10_000, 20, 100)  # CPython's defaults: (700, 10, 10)
gc.collect()
gc.freeze()
gc.set_threshold(*GC_THRESHOLDS)
