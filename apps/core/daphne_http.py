"""daphne's HTTP requests skip Twisted's own form parsing.

Twisted parses every multipart POST body into `request.args` before daphne sees the request, and answers a body
it cannot parse (e.g. a multipart body with no part) with a bare `400 Bad Request`: no Content-Type, no body,
never reaching Django, so not in the API's error shape (found by `make api-fuzz`). daphne never reads
`request.args` (it hands the raw body to Django, which parses it again), so the parsing is switched off: the
body goes to Django, which answers in the one error shape, and uploads are parsed once instead of twice.
Installed from the app config; a no-op when daphne is not installed.
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # pragma: no cover - another ASGI server
        return
    if getattr(WebRequest, "_evp_no_form_parsing", False):
        return
    original = WebRequest.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False

    WebRequest.__init__ = __init__
    WebRequest._evp_no_form_parsing = True
