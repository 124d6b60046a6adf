"""The project's URLs plus API views that fail on purpose (tests/core/test_api_contract.py)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evplatform.urls import handler404, handler500  # noqa: F401 (the project's handlers, as in production)


class BoomView(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise RuntimeError("boom in a DRF view")


def plain_boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom in a plain Django view")


def html_teapot(request: HttpRequest, *args: Any) -> HttpResponse:
    return HttpResponse("<h1>Bad request</h1>", status=400, content_type="text/html")


urlpatterns = [
    path("api/v1/test-boom/", BoomView.as_view()),
    path("api/v1/test-plain-boom/", plain_boom),
    path("api/v1/test-html-error/", html_teapot),
    path("", include("evplatform.urls")),
]
