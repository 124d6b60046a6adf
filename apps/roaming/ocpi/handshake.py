"""We register with a partner (credentials.asciidoc, we are the Sender of the credentials module): fetch their
versions with the CREDENTIALS_TOKEN_A they gave us, pick 2.2.1, POST our credentials with a fresh token B, store
their token C. Also the update (PUT: new tokens both ways) and the unregistration (DELETE) from our side.

No database transaction is held during a call; what must be visible to them while they handle our request (our
new token, which they use to fetch our versions) is committed before it."""

from __future__ import annotations

from apps.core.errors import ApplicationError, Conflict
from apps.roaming import services
from apps.roaming.models import PartnerStatus, RoamingPartner, TokenKind
from apps.roaming.ocpi import client, negotiation, transport


class HandshakeError(ApplicationError):
    """The handshake failed; `ocpi_status` is the OCPI status it amounts to (3001/3002/3003, or theirs)."""

    status_code = 502

    def __init__(self, message: str, *, ocpi_status: int | None = None) -> None:
        super().__init__(message, code="handshake_failed", fields={"ocpi_status": ocpi_status})
        self.ocpi_status = ocpi_status


def _fail(partner: RoamingPartner, message: str, ocpi_status: int | None) -> HandshakeError:
    services.partner_error_record(
        partner_id=partner.pk, module="credentials", message=f"{ocpi_status or ''} {message}".strip()
    )
    return HandshakeError(message, ocpi_status=ocpi_status)


def _negotiate(partner: RoamingPartner, versions_url: str, token: str) -> negotiation.Negotiated:
    try:
        return negotiation.negotiate(
            versions_url, token=token, token_style=partner.token_style, wanted_modules=partner.enabled_modules
        )
    except transport.OcpiError as error:
        raise _fail(partner, error.message, error.status_code) from None


def _credentials_url(partner: RoamingPartner, negotiated: negotiation.Negotiated) -> str:
    for endpoint in negotiated.endpoints:
        if endpoint["identifier"] == "credentials":
            return str(endpoint["url"])
    raise _fail(partner, "Their endpoints have no credentials module.", transport.NO_MATCHING_ENDPOINTS)


def _their_credentials(partner: RoamingPartner, answer: client.OcpiAnswer) -> negotiation.Credentials:
    try:
        creds = negotiation.parse_credentials(answer.data)
        negotiation.check_roles_match(partner, creds.roles)
    except transport.OcpiError as error:
        raise _fail(partner, f"Their credentials answer: {error.message}", transport.CLIENT_API_UNUSABLE) from None
    return creds


def register_with_partner(*, partner: RoamingPartner, base_url: str) -> RoamingPartner:
    """The handshake from our side. `base_url`: ours as the partner reaches it (settings.OCPI_BASE_URL or the
    request's)."""
    partner = RoamingPartner.objects.select_related("tenant").get(pk=partner.pk)
    if partner.status != PartnerStatus.PENDING:
        raise Conflict(f"The partner is {partner.status}; only a pending partner registers.", code="not_pending")
    if not partner.versions_url or not partner.their_token:
        raise ApplicationError(
            "Set their versions URL and the CREDENTIALS_TOKEN_A they gave us first.",
            code="incomplete",
            fields={"versions_url": ["Required."], "their_token": ["Required."]},
        )
    token_a = partner.their_token
    negotiated = _negotiate(partner, partner.versions_url, token_a)
    url = _credentials_url(partner, negotiated)
    partner, token_b = services.partner_outgoing_token_issue(partner_id=partner.pk)  # committed: they call us with it
    try:
        answer = client.call(
            "POST",
            url,
            token=token_a,
            token_style=partner.token_style,
            body=negotiation.our_credentials(partner, token=token_b, base_url=base_url),
        )
    except client.PartnerCallError as exc:
        raise _fail(partner, f"Their credentials POST failed: {exc.message}", exc.ocpi_status) from None
    creds = _their_credentials(partner, answer)
    partner, _ = services.partner_registered(
        partner_id=partner.pk,
        their_token=creds.token,
        their_token_kind=TokenKind.C,
        credentials_roles=creds.roles,
        versions_url=partner.versions_url,
        version=negotiated.version,
        endpoints=negotiated.endpoints,
        new_our_token_kind=None,
        expect_status=PartnerStatus.PENDING,
    )
    return partner


def update_with_partner(*, partner: RoamingPartner, base_url: str) -> RoamingPartner:
    """Token rotation from our side (PUT to their credentials): a new token of ours, and theirs from the answer.
    If the PUT fails, our previous token stays valid (it is restored)."""
    partner = RoamingPartner.objects.select_related("tenant").get(pk=partner.pk)
    if partner.status != PartnerStatus.REGISTERED:
        raise Conflict(f"The partner is {partner.status}; only a registered partner rotates.", code="not_registered")
    url = partner.endpoint_url("credentials")
    if not url:
        raise _fail(partner, "No credentials endpoint stored for them.", transport.NO_MATCHING_ENDPOINTS)
    previous = services.partner_token_snapshot(partner_id=partner.pk)
    partner, new_token = services.partner_token_rotate(partner_id=partner.pk)
    try:
        answer = client.call(
            "PUT",
            url,
            token=partner.their_token,
            token_style=partner.token_style,
            body=negotiation.our_credentials(partner, token=new_token, base_url=base_url),
        )
    except client.PartnerCallError as exc:
        services.partner_token_restore(partner_id=partner.pk, snapshot=previous)
        raise _fail(partner, f"Their credentials PUT failed: {exc.message}", exc.ocpi_status) from None
    creds = _their_credentials(partner, answer)
    negotiated = _negotiate(partner, creds.url, creds.token)
    partner, _ = services.partner_registered(
        partner_id=partner.pk,
        their_token=creds.token,
        their_token_kind=partner.their_token_kind or TokenKind.C,
        credentials_roles=creds.roles,
        versions_url=creds.url,
        version=negotiated.version,
        endpoints=negotiated.endpoints,
        new_our_token_kind=None,
        expect_status=PartnerStatus.REGISTERED,
    )
    return partner


def unregister_with_partner(*, partner: RoamingPartner) -> RoamingPartner:
    """Unregistration from our side (DELETE to their credentials). Our side forgets the tokens even when they
    cannot be reached (the error is recorded): a token we no longer accept is the safe outcome."""
    partner = RoamingPartner.objects.get(pk=partner.pk)
    if partner.status != PartnerStatus.REGISTERED:
        raise Conflict(
            f"The partner is {partner.status}; only a registered partner unregisters.", code="not_registered"
        )
    url = partner.endpoint_url("credentials")
    error: HandshakeError | None = None
    if url:
        try:
            client.call("DELETE", url, token=partner.their_token, token_style=partner.token_style)
        except client.PartnerCallError as exc:
            error = _fail(partner, f"Their credentials DELETE failed: {exc.message}", exc.ocpi_status)
    partner = services.partner_unregistered(partner_id=partner.pk)
    if error is not None:
        raise error
    return partner
