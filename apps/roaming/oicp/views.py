"""Hubject's calls to us (as CPO, and as EMP: CDRs and notifications), over HTTPS with mutual TLS (`/oicp/` + the
files' paths).

TLS ends at the reverse proxy, which verifies Hubject's client certificate against Hubject's CA and passes the
outcome in headers (nginx: `ssl_verify_client on; proxy_set_header X-SSL-Client-Verify $ssl_client_verify;
proxy_set_header X-SSL-Client-S-DN $ssl_client_s_dn;`). A call is taken only when the proxy says SUCCESS and the
subject contains `OICP_INBOUND_CLIENT_DN` (e.g. `CN=hubject`); with that setting empty, none is (017). Every body is
checked against the file of our role (an invalid one: Result false, 022 with the JSON paths, HTTP 400, nothing
done), and so is every answer we give (a bug if not: logged)"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.roaming.oicp import emp, inbound, schema

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024


def _refusal(code: str, info: str, status: int) -> JsonResponse:
    return JsonResponse(inbound.Answer(code, info).body(), status=status)


def _trusted(request: HttpRequest) -> str:
    """Why the caller is not Hubject (empty: it is)."""
    wanted = str(getattr(settings, "OICP_INBOUND_CLIENT_DN", "") or "")
    if not wanted:
        return "no Hubject client certificate is configured (OICP_INBOUND_CLIENT_DN)"
    if request.META.get("HTTP_X_SSL_CLIENT_VERIFY", "") != "SUCCESS":
        return "no verified client certificate"
    if wanted not in request.META.get("HTTP_X_SSL_CLIENT_S_DN", ""):
        return "the client certificate is not Hubject's"
    return ""


def _endpoint(
    name: str, handle: Callable[[dict[str, Any]], inbound.Answer | dict[str, Any]], side: schema.Side = "cpo"
) -> Callable[..., JsonResponse]:
    """A view for one operation Hubject calls on us, in our role `side` (its bodies checked against that file)."""
    operation = schema.operation_named(side, name)

    @csrf_exempt
    @require_POST
    def view(request: HttpRequest, provider_id: str = "", operator_id: str = "") -> JsonResponse:
        untrusted = _trusted(request)
        if untrusted:
            return _refusal("017", untrusted, 403)
        if len(request.body) > MAX_BODY:
            return _refusal("022", f"body larger than {MAX_BODY} bytes", 413)
        try:
            body = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return _refusal("022", f"body is not JSON: {error}", 400)
        issues = operation.request_issues(body)
        if issues:
            return _refusal("022", "; ".join(str(issue) for issue in issues), 400)
        if provider_id and body["ProviderID"].replace("*", "-").upper() != provider_id.replace("*", "-").upper():
            return _refusal("022", f"ProviderID {body['ProviderID']} is not the path's {provider_id}", 400)
        named = str(body.get("OperatorID") or body.get("EvseID") or "")
        if operator_id and not named.replace("*", "").upper().startswith(operator_id.replace("*", "").upper()):
            return _refusal("022", f"{named} is not of the path's operator {operator_id}", 400)
        result = handle(body)
        answer = result.body() if isinstance(result, inbound.Answer) else result
        problems = operation.response_issues(answer)
        if problems:  # our bug: Hubject would refuse it; say so in the log, answer anyway
            logger.error("OICP %s: our answer breaks the file: %s", name, "; ".join(map(str, problems)))
        return JsonResponse(answer)

    view.__name__ = f"oicp_{side}_{name}"
    return view


authorize_remote_start = _endpoint("AuthorizeRemoteStart", inbound.remote_start)
authorize_remote_stop = _endpoint("AuthorizeRemoteStop", inbound.remote_stop)
reservation_start = _endpoint("AuthorizeRemoteReservationStart", inbound.reservation_start)
reservation_stop = _endpoint("AuthorizeRemoteReservationStop", inbound.reservation_stop)
# we are EMP: other CPOs ask whether our driver may charge; their CDRs and notifications of our drivers' sessions
authorize_start = _endpoint("AuthorizeStart", emp.authorize_start, "emp")
authorize_stop = _endpoint("AuthorizeStop", emp.authorize_stop, "emp")
charge_detail_record = _endpoint("ChargeDetailRecord", inbound.emp_charge_detail_record, "emp")
charging_notifications = _endpoint("ChargingNotifications", inbound.emp_charging_notification, "emp")
