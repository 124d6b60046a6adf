"""OCPI 2.2.1 transport (transport_and_format.asciidoc, status_codes.asciidoc), in one place for every module.

- `Authorization: Token <base64(token)>`; the raw token too for partners flagged 2.1.1-style. Missing or unknown
  token: HTTP 401. CREDENTIALS_TOKEN_A on a module other than versions/credentials: HTTP 401. Suspended: 401.
- Every response under /ocpi/, errors and unknown paths included, is the envelope `{data, status_code,
  status_message, timestamp}` with `X-Request-ID` and `X-Correlation-ID` echoed (made up when missing).
- Functional modules take and send the routing headers OCPI-from/to-country-code/party-id.
- Lists paginate with `paginate`: date_from inclusive, date_to exclusive, offset, limit, `Link: <…>; rel="next"`
  with the original filters, `X-Total-Count`, `X-Limit`, a stable order (last_updated, then id).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from apps.roaming import selectors
from apps.roaming.models import PartnerStatus, RoamingPartner, TokenKind, TokenStyle
from apps.sessions.ocpi_json import DecimalNumberEncoder

logger = logging.getLogger(__name__)

# status codes (status_codes.asciidoc)
SUCCESS = 1000
CLIENT_ERROR = 2000
INVALID_PARAMETERS = 2001
NOT_ENOUGH_INFORMATION = 2002
UNKNOWN_LOCATION = 2003
UNKNOWN_TOKEN = 2004
SERVER_ERROR = 3000
CLIENT_API_UNUSABLE = 3001
UNSUPPORTED_VERSION = 3002
NO_MATCHING_ENDPOINTS = 3003

DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?$")


def ocpi_datetime(value: dt.datetime) -> str:
    """UTC, second precision, with the Z designator: '2015-06-29T20:39:09Z' (types.asciidoc DateTime)."""
    return value.astimezone(dt.UTC).strftime(DATETIME_FORMAT)


def parse_ocpi_datetime(value: str) -> dt.datetime:
    """An RFC 3339 DateTime as OCPI allows it (no zone designator means UTC); ValueError otherwise."""
    match = _DATETIME.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not an OCPI DateTime: {value!r}")
    text = value.strip()
    if match.group(8) is None:
        text += "Z"
    fraction = match.group(7)
    if fraction and len(fraction) > 7:  # fromisoformat takes at most microseconds
        text = text.replace(fraction, fraction[:7])
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


class OcpiError(Exception):
    """An answer other than success: the OCPI status code, and the HTTP status it travels with (200 for requests
    that reached the OCPI layer, status_codes.asciidoc; 400/401/404/405 on the HTTP layer)."""

    def __init__(self, status_code: int, message: str, *, http_status: int = 200, data: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.http_status = http_status
        self.data = data


def unauthorized(message: str) -> OcpiError:
    return OcpiError(CLIENT_ERROR, message, http_status=401)


def _request_ids(request: HttpRequest) -> tuple[str, str]:
    request_id = (request.headers.get("X-Request-ID") or "").strip()[:255] or str(uuid.uuid4())
    correlation_id = (request.headers.get("X-Correlation-ID") or "").strip()[:255] or str(uuid.uuid4())
    return request_id, correlation_id


def envelope(
    request: HttpRequest,
    data: Any = None,
    *,
    status_code: int = SUCCESS,
    message: str = "Success",
    http_status: int = 200,
    headers: dict[str, str] | None = None,
    include_data: bool = True,
) -> HttpResponse:
    body: dict[str, Any] = {}
    if include_data:
        body["data"] = data
    body["status_code"] = status_code
    body["status_message"] = message
    body["timestamp"] = ocpi_datetime(timezone.now())
    response = HttpResponse(
        json.dumps(body, cls=DecimalNumberEncoder),  # Decimal amounts as exact JSON numbers
        status=http_status,
        content_type="application/json",
    )
    request_id, correlation_id = _request_ids(request)
    response["X-Request-ID"] = request_id
    response["X-Correlation-ID"] = correlation_id
    for name, value in (headers or {}).items():
        response[name] = value
    if http_status == 401:
        response["WWW-Authenticate"] = "Token"
    return response


def error_response(request: HttpRequest, error: OcpiError) -> HttpResponse:
    return envelope(
        request,
        error.data,
        status_code=error.status_code,
        message=error.message,
        http_status=error.http_status,
        include_data=error.data is not None,
    )


def not_found(request: HttpRequest, message: str = "No such endpoint.") -> HttpResponse:
    """The URL-level 404 under /ocpi/ (evplatform.urls.handler404)."""
    return error_response(request, OcpiError(CLIENT_ERROR, message, http_status=404))


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(request, OcpiError(SERVER_ERROR, "Internal server error.", http_status=500))


# --------------------------------------------------------------------------- authentication


def _decoded(encoded: str) -> str | None:
    try:
        raw = base64.b64decode(encoded, validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def authenticate(request: HttpRequest) -> tuple[RoamingPartner, str]:
    """The partner of the credentials token in the Authorization header and the plain token, or 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "token" or not value:
        raise unauthorized("Authorization header missing: use 'Authorization: Token <base64 credentials token>'.")
    partner: RoamingPartner | None = None
    token = ""
    decoded = _decoded(value)
    if decoded is not None:
        # some implementations encode a trailing newline (the spec's own example does: `echo` adds one)
        for candidate in dict.fromkeys((decoded, decoded.rstrip("\n"))):
            partner = selectors.partner_by_token(candidate)
            if partner is not None:
                token = candidate
                break
    if partner is None:
        raw_partner = selectors.partner_by_token(value)
        if raw_partner is not None and raw_partner.token_style == TokenStyle.OCPI_211:
            partner, token = raw_partner, value
    if partner is None:
        raise unauthorized("Unknown credentials token.")
    if partner.status == PartnerStatus.SUSPENDED:
        raise unauthorized("The credentials of this party are suspended.")
    return partner, token


# --------------------------------------------------------------------------- views


@dataclass(frozen=True)
class OcpiRequest:
    """What a module handler gets: the request, the calling partner, and the token they used."""

    http: HttpRequest
    partner: RoamingPartner
    token: str

    @property
    def token_kind(self) -> str:
        return self.partner.our_token_kind

    def json_body(self) -> Any:
        """The JSON body, or 400/2001 when it is not JSON (status_codes.asciidoc: HTTP 400 for invalid JSON)."""
        content_type = self.http.content_type or ""
        if content_type and content_type != "application/json":
            raise OcpiError(INVALID_PARAMETERS, "Content-Type must be application/json.", http_status=415)
        try:
            raw = self.http.body
        except RequestDataTooBig:
            raise OcpiError(INVALID_PARAMETERS, "The request body is too large.", http_status=413) from None
        try:
            return json.loads(raw or b"null")
        except (ValueError, RecursionError) as exc:
            raise OcpiError(INVALID_PARAMETERS, f"The body is not valid JSON: {exc}", http_status=400) from None


def _routing(request: HttpRequest, partner: RoamingPartner) -> dict[str, str]:
    """Check the routing headers of a functional module request: OCPI-to-* must name our party of this connection
    and OCPI-from-* the partner's (or, from a hub, a party behind it), when present. The answer carries them
    reversed."""
    to_cc = request.headers.get("OCPI-to-country-code")
    to_pid = request.headers.get("OCPI-to-party-id")
    from_cc = request.headers.get("OCPI-from-country-code")
    from_pid = request.headers.get("OCPI-from-party-id")
    if (to_cc or to_pid) and (
        (to_cc or "").upper() != partner.our_country_code or (to_pid or "").upper() != partner.our_party_id
    ):
        raise OcpiError(
            INVALID_PARAMETERS,
            f"OCPI-to-country-code/OCPI-to-party-id {to_cc}/{to_pid} is not a party of this platform for you "
            f"(use {partner.our_country_code}/{partner.our_party_id}).",
        )
    roles = partner.credentials_roles or [{"country_code": partner.country_code, "party_id": partner.party_id}]
    theirs = {(str(r.get("country_code", "")).upper(), str(r.get("party_id", "")).upper()) for r in roles}
    sender = ((from_cc or "").upper(), (from_pid or "").upper())
    if (from_cc or from_pid) and sender not in theirs and not _behind_hub(partner, sender):
        raise OcpiError(
            INVALID_PARAMETERS,
            f"OCPI-from-country-code/OCPI-from-party-id {from_cc}/{from_pid} is not one of your registered roles.",
        )
    return {
        "OCPI-from-country-code": partner.our_country_code,
        "OCPI-from-party-id": partner.our_party_id,
        "OCPI-to-country-code": (from_cc or partner.country_code).upper(),
        "OCPI-to-party-id": (from_pid or partner.party_id).upper(),
    }


def _behind_hub(partner: RoamingPartner, party: tuple[str, str]) -> bool:
    """A hub relays the requests of the parties behind it (OCPI-from-* names them): those it announced in
    hubclientinfo, or any party while it announced none."""
    if "HUB" not in (partner.roles or []):
        return False
    behind = selectors.hub_client_parties(partner_id=partner.pk)
    return not behind or party in behind


Handler = Callable[..., HttpResponse]


def ocpi_view(
    *, methods: Iterable[str], module: str, functional: bool, token_a: bool = False
) -> Callable[[Handler], Callable[..., HttpResponse]]:
    """Wrap a module handler `handler(ocpi: OcpiRequest, **url_kwargs) -> HttpResponse`: authentication, the
    methods (405 otherwise), the routing headers of functional modules and the envelope for every error.
    `token_a`: the module also takes CREDENTIALS_TOKEN_A (versions, credentials)."""
    allowed = {m.upper() for m in methods}

    def decorate(handler: Handler) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(handler)
        def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            try:
                partner, token = authenticate(request)
                if partner.our_token_kind == TokenKind.A and not token_a:
                    raise unauthorized(f"CREDENTIALS_TOKEN_A opens only versions and credentials, not {module}.")
                if functional and module not in partner.enabled_modules:
                    raise OcpiError(CLIENT_ERROR, f"The {module} module is not enabled for you.", http_status=404)
                if request.method not in allowed:
                    response = error_response(
                        request, OcpiError(CLIENT_ERROR, f"Method {request.method} not allowed.", http_status=405)
                    )
                    response["Allow"] = ", ".join(sorted(allowed))
                    return response
                routing = _routing(request, partner) if functional else {}
                response = handler(OcpiRequest(http=request, partner=partner, token=token), **kwargs)
                for name, value in routing.items():
                    response[name] = value
                return response
            except OcpiError as error:
                return error_response(request, error)
            except Exception:
                logger.exception("OCPI %s %s failed", request.method, request.path)
                if settings.DEBUG_PROPAGATE_EXCEPTIONS:
                    raise
                return server_error(request)

        return view

    return decorate


def base_url(request: HttpRequest) -> str:
    """Our public base URL (settings.OCPI_BASE_URL behind a proxy, else the request's own)."""
    configured: str = getattr(settings, "OCPI_BASE_URL", "") or ""
    return configured.rstrip("/") if configured else request.build_absolute_uri("/").rstrip("/")


# --------------------------------------------------------------------------- pagination


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    offset: int
    limit: int


def _int_param(request: HttpRequest, name: str, default: int) -> int:
    value = request.GET.get(name)
    if value is None or value == "":
        return default
    if not re.fullmatch(r"\d{1,9}", value):
        raise OcpiError(INVALID_PARAMETERS, f"{name} must be a non-negative integer, not {value!r}.")
    return int(value)


def paginate(
    ocpi: OcpiRequest,
    queryset: QuerySet[Any],
    serialize: Callable[[list[Any]], list[Any]],
    *,
    updated_field: str = "updated_at",
    max_limit: int | None = None,
) -> HttpResponse:
    """One page of a Sender's list, with the headers of transport_and_format.asciidoc. `serialize` turns the page's
    rows into OCPI objects (one call per page, so it can prefetch)."""
    request = ocpi.http
    allowed = {"date_from", "date_to", "offset", "limit"}
    unknown = sorted(set(request.GET) - allowed)
    if unknown:
        raise OcpiError(INVALID_PARAMETERS, f"Unknown query parameter(s): {', '.join(unknown)}.")
    server_limit = max_limit or int(getattr(settings, "OCPI_PAGE_LIMIT", 100))
    offset = _int_param(request, "offset", 0)
    limit = min(_int_param(request, "limit", server_limit), server_limit)
    filters: dict[str, str] = {}
    for name, lookup in (("date_from", "gte"), ("date_to", "lt")):
        value = request.GET.get(name)
        if value is None:
            continue
        try:
            moment = parse_ocpi_datetime(value)
        except ValueError:
            raise OcpiError(INVALID_PARAMETERS, f"{name} must be an RFC 3339 DateTime, not {value!r}.") from None
        queryset = queryset.filter(**{f"{updated_field}__{lookup}": moment})
        filters[name] = value
    queryset = queryset.order_by(updated_field, "pk")
    total = queryset.count()
    rows = list(queryset[offset : offset + limit]) if limit else []
    headers = {"X-Total-Count": str(total), "X-Limit": str(limit)}
    if offset + len(rows) < total and limit:
        query = urlencode({"offset": offset + len(rows), "limit": limit, **filters})
        headers["Link"] = f'<{base_url(request)}{request.path}?{query}>; rel="next"'
    return envelope(request, serialize(rows), headers=headers)
