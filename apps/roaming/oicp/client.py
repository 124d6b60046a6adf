"""Calling Hubject: one OICP 2.3 operation over HTTPS with our client certificate (mutual TLS).

`OicpClient(connection).call("PushEvseData", body)`:
1. refuses an operation the connection has not enabled (`OicpDisabled`);
2. checks the body against the OpenAPI file of the operation's role: an invalid body is our bug and is never sent
   (`schema.OicpValidationError`, recorded as the operation's last error);
3. POSTs it to `base_url` + the operation's path (our OperatorID/ProviderID in it), within `OICP_TIMEOUT_SECONDS`,
   presenting the stored certificate and key (`credentials.ssl_context`), checking Hubject's server certificate
   against the connection's CA (or the system's);
4. checks the answer against the file as well. A 200 with a valid body is returned as it is, whatever its
   StatusCode (an AuthorizeStart answered NotAuthorized is an answer, not a failure); anything else raises
   `OicpCallFailed`.
Every call is recorded per operation (`services.oicp_operation_record`): calls, last call, outcome, StatusCode,
HTTP status, last error; the admin shows them.
"""

from __future__ import annotations

import ssl
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from apps.core.errors import ApplicationError
from apps.roaming.models import OICP_OPERATION_SIDE, OicpConnection, OicpOperationState
from apps.roaming.oicp import credentials, schema, services

Outcome = OicpOperationState.Outcome


class OicpDisabled(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="oicp_disabled", status_code=409)


class OicpCallFailed(ApplicationError):
    """Hubject did not accept the call: network, TLS, an HTTP error, or an answer that breaks the file."""

    def __init__(self, message: str, *, status_code_oicp: str = "", http_status: int | None = None) -> None:
        super().__init__(message, code="oicp_call_failed", status_code=502)
        self.oicp_code = status_code_oicp
        self.http_status = http_status


class _ClientCertificateAdapter(HTTPAdapter):
    """requests with our own SSLContext (client certificate + the server CA we trust)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None) -> Any:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        pool["ssl_context"] = self._context
        return host, pool


def _status(answer: Any) -> tuple[str, str]:
    code = answer.get("StatusCode") if isinstance(answer, dict) else None
    if not isinstance(code, dict):
        return "", ""
    text = " ".join(str(code.get(key, "")) for key in ("Description", "AdditionalInfo") if code.get(key))
    return str(code.get("Code", "")), text


class OicpClient:
    def __init__(self, connection: OicpConnection, *, timeout: float | None = None) -> None:
        self.connection = connection
        self.timeout = timeout if timeout is not None else float(settings.OICP_TIMEOUT_SECONDS)
        self._http: requests.Session | None = None

    def _session(self) -> requests.Session:
        if self._http is None:
            context = credentials.ssl_context(
                certificate_pem=self.connection.client_certificate,
                key_encrypted=self.connection.client_key_encrypted,
                server_ca=self.connection.server_ca,
            )
            session = requests.Session()
            session.mount("https://", _ClientCertificateAdapter(context))
            self._http = session
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def path(self, operation: schema.Operation) -> str:
        ids = {
            "operatorID": self.connection.operator_id,
            "providerID": self.connection.provider_id,
            "externalID": self.connection.provider_id,  # the EMP file names the ProviderID so in RemoteStop
        }
        path = operation.path
        for name, value in ids.items():
            if "{" + name + "}" in path:
                if not value:
                    raise OicpDisabled(f"{operation.name} needs our {name[:-2]}ID, and the connection has none.")
                path = path.replace("{" + name + "}", value)
        return path

    def _record(self, operation: str, outcome: str, **kwargs: Any) -> None:
        services.oicp_operation_record(connection=self.connection, operation=operation, outcome=outcome, **kwargs)

    def call(self, operation_name: str, body: dict[str, Any], *, query: dict[str, Any] | None = None) -> dict[str, Any]:
        connection = self.connection
        if operation_name not in OICP_OPERATION_SIDE:
            raise OicpDisabled(f"{operation_name} is not an OICP operation we call.")
        if not connection.enabled or operation_name not in connection.enabled_operations:
            raise OicpDisabled(f"{operation_name} is not enabled on this Hubject connection.")
        operation = schema.operation_named(OICP_OPERATION_SIDE[operation_name], operation_name)
        path = self.path(operation)
        try:
            operation.validate_request(body)
        except schema.OicpValidationError as error:
            self._record(operation_name, Outcome.FAILED, error=f"not sent, our body is invalid: {error}")
            raise
        url = connection.base_url + path
        try:
            response = self._session().post(url, json=body, params=query, timeout=self.timeout)
        except (requests.RequestException, credentials.CredentialsError) as error:
            message = f"{operation_name}: {error.__class__.__name__}: {error}"
            self._record(operation_name, Outcome.FAILED, error=message)
            raise OicpCallFailed(message) from error
        try:
            answer = response.json()
        except ValueError:
            message = f"{operation_name}: HTTP {response.status_code} without a JSON body"
            self._record(operation_name, Outcome.FAILED, http_status=response.status_code, error=message)
            raise OicpCallFailed(message, http_status=response.status_code) from None
        code, text = _status(answer)
        if response.status_code != 200:
            message = f"{operation_name}: HTTP {response.status_code} {code} {text}".strip()
            outcome = Outcome.REFUSED if code else Outcome.FAILED
            self._record(operation_name, outcome, status_code=code, http_status=response.status_code, error=message)
            raise OicpCallFailed(message, status_code_oicp=code, http_status=response.status_code)
        issues = operation.response_issues(answer)
        if issues:
            message = f"{operation_name}: Hubject's answer breaks the OpenAPI file: " + "; ".join(map(str, issues))
            self._record(operation_name, Outcome.FAILED, status_code=code, http_status=200, error=message)
            raise OicpCallFailed(message, status_code_oicp=code, http_status=200)
        if code == "000":
            self._record(operation_name, Outcome.OK, status_code=code, http_status=200)
        else:
            refusal = f"{operation_name}: {code} {text}".strip()
            self._record(operation_name, Outcome.REFUSED, status_code=code, http_status=200, error=refusal)
        return answer  # type: ignore[no-any-return]
