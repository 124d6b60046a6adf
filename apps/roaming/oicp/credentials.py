"""The client certificate a tenant presents to Hubject (mutual TLS) and its private key.

The key is stored encrypted as the tenants' CA keys are (`apps/stations/certificates.py`): Fernet (AES-128-CBC +
HMAC-SHA256) with a key derived from SECRET_KEY, with its own purpose string; after rotating SECRET_KEY, keep the old
value in `OICP_KEY_SECRETS` until the keys are stored again. A database dump alone does not give the key away.

For a call, `ssl_context` loads certificate and key into an `ssl.SSLContext`: Python's ssl module reads them from
files only, so they are written to a private temporary folder (0700, the key 0600) and deleted as soon as the context
has read them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings


class CredentialsError(ValueError):
    """Not a usable certificate, key or CA bundle; the message says why."""


def _fernet() -> MultiFernet:
    secrets = [settings.SECRET_KEY, *settings.OICP_KEY_SECRETS]
    return MultiFernet(
        [Fernet(base64.urlsafe_b64encode(hashlib.sha256(f"evp-oicp-key:{s}".encode()).digest())) for s in secrets]
    )


def encrypt(pem: str) -> str:
    return _fernet().encrypt(pem.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise CredentialsError("The stored client key cannot be decrypted (SECRET_KEY changed?).") from None


@dataclass(frozen=True)
class CheckedCredentials:
    certificate_pem: str
    key_pem: str  # PKCS#8, unencrypted
    subject: str
    not_after: dt.datetime


def check(certificate_pem: str, key_pem: str, *, now: dt.datetime | None = None) -> CheckedCredentials:
    """The certificate and key, if they are PEM, belong together and the certificate is valid now."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.strip().encode())
    except ValueError:
        raise CredentialsError("The client certificate is not a PEM certificate.") from None
    try:
        key = serialization.load_pem_private_key(key_pem.strip().encode(), password=None)
    except (ValueError, TypeError):
        raise CredentialsError("The private key is not an unencrypted PEM key.") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CredentialsError("The private key must be RSA or EC.")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != certificate.public_key().public_bytes(
        serialization.Encoding.DER, public
    ):
        raise CredentialsError("The private key does not belong to the client certificate.")
    now = now or dt.datetime.now(dt.UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise CredentialsError(
            f"The client certificate is not valid now (valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
            f"{certificate.not_valid_after_utc:%Y-%m-%d})."
        )
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return CheckedCredentials(
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=pkcs8.decode(),
        subject=certificate.subject.rfc4514_string()[:255],
        not_after=certificate.not_valid_after_utc,
    )


def check_ca(ca_pem: str) -> str:
    """A CA bundle (one or more PEM certificates), normalized; "" stays "" (the system's trust store)."""
    if not ca_pem.strip():
        return ""
    try:
        certificates = x509.load_pem_x509_certificates(ca_pem.strip().encode())
    except ValueError:
        raise CredentialsError("The server CA is not a PEM certificate bundle.") from None
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


def ssl_context(*, certificate_pem: str, key_encrypted: str, server_ca: str = "") -> ssl.SSLContext:
    """A client context presenting our certificate, checking the server against `server_ca` (or the system's)."""
    context = ssl.create_default_context(cadata=server_ca or None)
    if not server_ca:
        context.load_default_certs()
    with tempfile.TemporaryDirectory(prefix="evp-oicp-") as folder:  # created 0700
        cert_file, key_file = Path(folder) / "client.crt", Path(folder) / "client.key"
        cert_file.write_text(certificate_pem)
        key_file.touch(mode=0o600)
        key_file.write_text(decrypt(key_encrypted))
        try:
            context.load_cert_chain(str(cert_file), str(key_file))
        except ssl.SSLError as error:
            raise CredentialsError(f"The client certificate or key was refused by TLS: {error}") from None
    return context
