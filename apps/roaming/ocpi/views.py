"""Configuration modules: versions, version details, credentials (the handshake when they register with us)."""

from __future__ import annotations

from django.http import HttpResponse

from apps.core.errors import Conflict
from apps.roaming import services
from apps.roaming.models import PartnerStatus, Role, TokenKind
from apps.roaming.ocpi import cpo_views, negotiation, transport
from apps.roaming.ocpi.transport import OcpiError, OcpiRequest, envelope, ocpi_view

# The functional modules this platform implements, per role we play towards a partner (`partner.our_roles`):
# (our role, module identifier) -> (our interface role, path). Version details list those of the partner's roles
# and enabled modules; a module can appear twice (e.g. locations: SENDER as CPO, RECEIVER as eMSP).
IMPLEMENTED: dict[tuple[str, str], tuple[str, str]] = {}
IMPLEMENTED.update({(Role.CPO, module): where for module, where in cpo_views.SENDER_ENDPOINTS.items()})
# CPO Receiver modules (tokens, commands, chargingprofiles)
IMPLEMENTED[(Role.CPO, "tokens")] = ("RECEIVER", "/ocpi/2.2.1/tokens")
IMPLEMENTED[(Role.CPO, "commands")] = ("RECEIVER", "/ocpi/2.2.1/commands")
IMPLEMENTED[(Role.CPO, "chargingprofiles")] = ("RECEIVER", "/ocpi/2.2.1/chargingprofiles")
# eMSP modules register themselves here as they land: IMPLEMENTED[(Role.EMSP, "locations")] = ("RECEIVER", ...)
# eMSP commands Sender: the CPO POSTs CommandResults to the response_url of each command we send
# (/ocpi/emsp/2.2.1/commands/{command}/{uid}, apps/roaming/ocpi/emsp_commands.py)
IMPLEMENTED[(Role.EMSP, "commands")] = ("SENDER", "/ocpi/emsp/2.2.1/commands")
# eMSP Receivers of the CPO's data (emsp_receivers)
for _module in ("locations", "tariffs", "sessions", "cdrs"):
    IMPLEMENTED[(Role.EMSP, _module)] = ("RECEIVER", f"/ocpi/emsp/2.2.1/{_module}")
# hubclientinfo Receiver: a hub tells us the parties behind it, whichever role we play towards it
IMPLEMENTED[(Role.EMSP, "hubclientinfo")] = ("RECEIVER", "/ocpi/2.2.1/hubclientinfo")
IMPLEMENTED[(Role.CPO, "hubclientinfo")] = ("RECEIVER", "/ocpi/2.2.1/hubclientinfo")


def endpoints_for(ocpi: OcpiRequest) -> list[dict[str, str]]:
    base = transport.base_url(ocpi.http)
    endpoints = [{"identifier": "credentials", "role": "SENDER", "url": f"{base}/ocpi/2.2.1/credentials"}]
    seen: set[tuple[str, str]] = set()
    for (our_role, identifier), (role, path) in sorted(IMPLEMENTED.items()):
        if our_role not in ocpi.partner.our_roles or identifier not in ocpi.partner.enabled_modules:
            continue
        if (identifier, role) in seen:  # one endpoint per module and interface role
            continue
        seen.add((identifier, role))
        endpoints.append({"identifier": identifier, "role": role, "url": f"{base}{path}"})
    return endpoints


@ocpi_view(methods=["GET"], module="versions", functional=False, token_a=True)
def versions(ocpi: OcpiRequest) -> HttpResponse:
    base = transport.base_url(ocpi.http)
    return envelope(ocpi.http, [{"version": negotiation.VERSION, "url": f"{base}/ocpi/{negotiation.VERSION}"}])


@ocpi_view(methods=["GET"], module="versions", functional=False, token_a=True)
def version_details(ocpi: OcpiRequest) -> HttpResponse:
    return envelope(ocpi.http, {"version": negotiation.VERSION, "endpoints": endpoints_for(ocpi)})


def _not_allowed(message: str) -> OcpiError:
    return OcpiError(transport.CLIENT_ERROR, message, http_status=405)


@ocpi_view(methods=["GET", "POST", "PUT", "DELETE"], module="credentials", functional=False, token_a=True)
def credentials(ocpi: OcpiRequest) -> HttpResponse:
    partner = ocpi.partner
    base = transport.base_url(ocpi.http)
    registered = partner.status == PartnerStatus.REGISTERED and ocpi.token_kind != TokenKind.A
    method = ocpi.http.method
    if method == "GET":
        return envelope(ocpi.http, negotiation.our_credentials(partner, token=ocpi.token, base_url=base))
    if method == "DELETE":
        if not registered:
            raise _not_allowed("Not registered: there is nothing to unregister.")
        services.partner_unregistered(partner_id=partner.pk)
        return envelope(ocpi.http, None)
    if method == "POST" and registered:
        raise _not_allowed("Already registered: use PUT to update the credentials, DELETE to unregister.")
    if method == "PUT" and not registered:
        raise _not_allowed("Not registered yet: register with POST first.")

    creds = negotiation.parse_credentials(ocpi.json_body())
    negotiation.check_roles_match(partner, creds.roles)
    try:
        negotiated = negotiation.negotiate(
            creds.url, token=creds.token, token_style=partner.token_style, wanted_modules=partner.enabled_modules
        )
    except OcpiError as error:
        services.partner_error_record(
            partner_id=partner.pk, module="credentials", message=f"{error.status_code} {error.message}"
        )
        raise
    try:
        partner, new_token = services.partner_registered(
            partner_id=partner.pk,
            their_token=creds.token,
            their_token_kind=TokenKind.B if method == "POST" else partner.their_token_kind or TokenKind.B,
            credentials_roles=creds.roles,
            versions_url=creds.url,
            version=negotiated.version,
            endpoints=negotiated.endpoints,
            new_our_token_kind=TokenKind.C if method == "POST" else partner.our_token_kind or TokenKind.C,
            expect_status=PartnerStatus.PENDING if method == "POST" else PartnerStatus.REGISTERED,
        )
    except Conflict:
        raise _not_allowed(
            "The registration changed meanwhile (registered or unregistered by another request)."
        ) from None
    assert new_token is not None
    return envelope(ocpi.http, negotiation.our_credentials(partner, token=new_token, base_url=base))


# --------------------------------------------------------------------------- eMSP tokens Sender (slice "tokens")
IMPLEMENTED[(Role.EMSP, "tokens")] = ("SENDER", "/ocpi/emsp/2.2.1/tokens")
