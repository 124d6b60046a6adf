"""TLS served by daphne itself for OCPP security profiles 2 and 3, and what a WebSocket handshake's transport
proves (TLS, and the charger's client certificate), directly or through a trusted TLS-terminating proxy.

daphne's own `ssl:` endpoint (Twisted's) cannot ask chargers for a client certificate, so this module adds an
endpoint type to the command line, `ocpptls:` (README, "Security profiles"):

    python -m evplatform.server -e ocpptls:port=8443:interface=0.0.0.0:certKey=server.crt:privateKey=server.key \
        [:extraCertChain=chain.pem] evplatform.asgi:application

TLS 1.2 or newer. The server asks every client for a certificate but does not verify it at the TLS layer (a
profile 2 charger has none, and each tenant has its own CA): the application verifies it per charger (issued by
its tenant's CA, common name = charge point id, valid now: `stations.services.charge_point_authenticate`). The
handshake's scope carries the ASGI TLS extension (`scope["extensions"]["tls"]`, `client_cert_chain` in PEM) and
`scheme` "wss".

Behind a proxy that terminates TLS, a handshake is taken as TLS, with the client certificate the proxy forwards,
only when its TCP peer is one of `OCPP_TRUSTED_PROXIES` (addresses or networks): `X-Forwarded-Proto: https` (or
`wss`) says TLS, `OCPP_PROXY_CLIENT_CERT_HEADER` (default `X-Client-Cert`) carries the URL-encoded PEM (nginx's
`$ssl_client_escaped_cert`). From any other peer both headers are ignored.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import unquote

from django.conf import settings

logger = logging.getLogger(__name__)

PREFIX = "ocpptls:"


# --------------------------------------------------------------------------- the daphne endpoint


def _options(cert_file: str, key_file: str, chain_file: str | None) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from OpenSSL import SSL, crypto
    from twisted.internet import ssl

    class ClientCertificateOptions(ssl.CertificateOptions):  # type: ignore[misc]
        """Asks the client for a certificate, accepts any (or none): the application verifies it per charger."""

        def _makeContext(self, skipCiphers: bool = False) -> Any:
            context = super()._makeContext(skipCiphers)
            context.set_verify(SSL.VERIFY_PEER, lambda connection, cert, errno, depth, ok: True)
            context.set_session_id(b"evp-ocpp")
            return context

    with open(cert_file, "rb") as handle:
        certs = x509.load_pem_x509_certificates(handle.read())
    with open(key_file, "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    extra = list(certs[1:])
    if chain_file:
        with open(chain_file, "rb") as handle:
            extra += x509.load_pem_x509_certificates(handle.read())
    return ClientCertificateOptions(
        privateKey=crypto.PKey.from_cryptography_key(key),  # type: ignore[arg-type]
        certificate=crypto.X509.from_cryptography(certs[0]),
        extraCertChain=[crypto.X509.from_cryptography(cert) for cert in extra],
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
    )


def endpoint(reactor: Any, description: str) -> Any:
    """`ocpptls:port=8443[:interface=..]:certKey=<PEM cert (and chain)>:privateKey=<PEM key>[:extraCertChain=..]`"""
    from twisted.internet.endpoints import SSL4ServerEndpoint

    params = dict(part.split("=", 1) for part in description.removeprefix(PREFIX).split(":") if "=" in part)
    missing = [name for name in ("port", "certKey", "privateKey") if name not in params]
    if missing:
        raise ValueError(f"{description}: missing {', '.join(missing)}")
    options = _options(params["certKey"], params["privateKey"], params.get("extraCertChain"))
    return SSL4ServerEndpoint(
        reactor,
        int(params["port"]),
        options,
        backlog=int(params.get("backlog", 50)),
        interface=params.get("interface", ""),
    )


def install() -> None:
    """Teach daphne's endpoint parser the `ocpptls:` endpoint (daphne calls `serverFromString` per `-e`)."""
    import daphne.server

    original = daphne.server.serverFromString
    if getattr(original, "_evp_tls", False):
        return

    def server_from_string(reactor: Any, description: str) -> Any:
        if description.startswith(PREFIX):
            return endpoint(reactor, description)
        return original(reactor, description)

    server_from_string._evp_tls = True  # type: ignore[attr-defined]
    daphne.server.serverFromString = server_from_string


def scope_extension(transport: Any) -> dict[str, Any] | None:
    """The ASGI TLS extension for a connection on a TLS transport (None on plain TCP)."""
    from twisted.internet.interfaces import ISSLTransport

    if transport is None or not ISSLTransport.providedBy(transport):
        return None
    chain: list[str] = []
    peer = transport.getPeerCertificate()  # the TLS handshake is complete when the WebSocket one starts
    if peer is not None:
        from cryptography.hazmat.primitives import serialization

        chain.append(peer.to_cryptography().public_bytes(serialization.Encoding.PEM).decode())
    return {"client_cert_chain": chain, "client_cert_name": None, "client_cert_error": None}


# --------------------------------------------------------------------------- what a handshake's transport proves


@dataclass(frozen=True)
class TransportSecurity:
    tls: bool
    client_certificate: str | None  # PEM
    via: str  # "daphne", "proxy" or "plain"


@cache
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def trusted_proxy(address: str | None, entries: Iterable[str]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(tuple(entries)))


def transport_security(scope: dict[str, Any]) -> TransportSecurity:
    extension = (scope.get("extensions") or {}).get("tls")
    if extension is not None:
        chain = extension.get("client_cert_chain") or []
        return TransportSecurity(True, chain[0] if chain else None, "daphne")
    client = scope.get("client") or [None]
    if trusted_proxy(client[0], settings.OCPP_TRUSTED_PROXIES):
        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers") or []:
            headers.setdefault(name.lower(), value)
        proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").strip().lower()
        cert_header = settings.OCPP_PROXY_CLIENT_CERT_HEADER.lower().encode()
        cert = unquote(headers.get(cert_header, b"").decode("latin-1")).strip()
        return TransportSecurity(proto in ("https", "wss"), cert or None, "proxy")
    return TransportSecurity(False, None, "plain")
