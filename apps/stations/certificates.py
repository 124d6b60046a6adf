"""X.509 for the OCPP 1.6 security extension (the `cryptography` package): the tenant's CSMS certificate
authority, signing chargers' CSRs, and the CertificateHashData of a certificate.

The CA's private key is stored encrypted with a key derived from SECRET_KEY (Fernet: AES-128-CBC + HMAC-SHA256):
a database dump alone does not give it away. Rotating SECRET_KEY makes stored CA keys unreadable: keep the old
value in `OCPP_CA_KEY_SECRETS` (tried after SECRET_KEY) until the CAs are re-issued.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings

CA_YEARS = 10
CHARGER_CERT_DAYS = 2 * 365
FIRMWARE_SIGNER_DAYS = 3 * 365


class CertificateError(ValueError):
    """Not a usable certificate or CSR; the message says why."""


def _fernet() -> MultiFernet:
    secrets = [settings.SECRET_KEY, *settings.OCPP_CA_KEY_SECRETS]
    keys = [
        Fernet(base64.urlsafe_b64encode(hashlib.sha256(f"evp-ca-key:{secret}".encode()).digest())) for secret in secrets
    ]
    return MultiFernet(keys)


def encrypt_key(key: ec.EllipticCurvePrivateKey) -> str:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return _fernet().encrypt(pem).decode()


def decrypt_key(token: str) -> ec.EllipticCurvePrivateKey:
    try:
        pem = _fernet().decrypt(token.encode())
    except InvalidToken:
        raise CertificateError("The CA key cannot be decrypted (SECRET_KEY changed?).") from None
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


@dataclass(frozen=True)
class IssuedCa:
    certificate_pem: str
    private_key_encrypted: str
    not_after: dt.datetime


def ca_create(*, name: str, now: dt.datetime | None = None) -> IssuedCa:
    """A new self-signed CA (ECDSA P-256, as the whitepaper allows next to RSA 2048)."""
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, name[:64]), x509.NameAttribute(NameOID.COMMON_NAME, "CSMS CA")]
    )
    not_after = now + dt.timedelta(days=365 * CA_YEARS)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return IssuedCa(
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        private_key_encrypted=encrypt_key(key),
        not_after=cert.not_valid_after_utc,
    )


def load_csr(pem: str) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except (ValueError, TypeError):
        raise CertificateError("Not a PEM-encoded PKCS#10 certificate signing request.") from None
    try:
        valid = csr.is_signature_valid
    except (ValueError, InvalidSignature):
        valid = False
    if not valid:
        raise CertificateError("The CSR's signature does not verify.")
    return csr


def common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = values[0].value if values else ""
    return value if isinstance(value, str) else value.decode()


def load_certificate(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, TypeError):
        raise CertificateError("Not a PEM-encoded X.509 certificate.") from None


def load_chain(pem: str) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(pem.encode())
    except (ValueError, TypeError):
        raise CertificateError("Not a PEM-encoded X.509 certificate chain.") from None
    return chain


@dataclass(frozen=True)
class Signed:
    chain_pem: str  # the charger's certificate, then the CA's
    certificate_pem: str
    serial_number: str
    not_after: dt.datetime


def sign_csr(
    *,
    csr: x509.CertificateSigningRequest,
    ca_certificate_pem: str,
    ca_key_encrypted: str,
    days: int = CHARGER_CERT_DAYS,
    now: dt.datetime | None = None,
) -> Signed:
    """The charger's certificate (TLS client auth, for security profile 3), signed by the CA."""
    now = now or dt.datetime.now(dt.UTC)
    ca_cert = load_certificate(ca_certificate_pem)
    ca_key = decrypt_key(ca_key_encrypted)
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return Signed(
        chain_pem=pem + ca_certificate_pem,
        certificate_pem=pem,
        serial_number=format(cert.serial_number, "x"),
        not_after=cert.not_valid_after_utc,
    )


@dataclass(frozen=True)
class FirmwareSigner:
    certificate_pem: str
    private_key_encrypted: str
    not_after: dt.datetime


def firmware_signer_create(
    *, ca_certificate_pem: str, ca_key_encrypted: str, name: str, now: dt.datetime | None = None
) -> FirmwareSigner:
    """The tenant's firmware signing certificate (Security Whitepaper ed. 3, "Secure firmware update"): a code
    signing key issued by the tenant's CA. A charger verifies a SignedUpdateFirmware signature with it, and the
    certificate itself against the CA, which it holds as its ManufacturerRootCertificate."""
    now = now or dt.datetime.now(dt.UTC)
    ca_cert = load_certificate(ca_certificate_pem)
    ca_key = decrypt_key(ca_key_encrypted)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name[:64]),
            x509.NameAttribute(NameOID.COMMON_NAME, "Firmware signing"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=FIRMWARE_SIGNER_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return FirmwareSigner(
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        private_key_encrypted=encrypt_key(key),
        not_after=cert.not_valid_after_utc,
    )


def firmware_sign(*, chunks: Iterable[bytes], key_encrypted: str) -> tuple[str, str]:
    """(base64 DER ECDSA-SHA256 signature over the firmware file, its SHA-256 hex), reading the file once in
    chunks (a firmware image is tens of MB). The signature is what SignedUpdateFirmware.firmware.signature
    carries (<= 800 characters: a P-256 signature is ~96)."""
    digest = hashes.Hash(hashes.SHA256())
    for chunk in chunks:
        digest.update(chunk)
    value = digest.finalize()
    signature = decrypt_key(key_encrypted).sign(value, ec.ECDSA(Prehashed(hashes.SHA256())))
    return base64.b64encode(signature).decode(), value.hex()


def firmware_signer_trusted(*, signing_certificate_pem: str, root_pem: str) -> bool:
    """What a charger checks when SignedUpdateFirmware arrives (else it answers InvalidCertificate): the signing
    certificate is issued by its ManufacturerRootCertificate and valid now."""
    try:
        signer = load_certificate(signing_certificate_pem)
        signer.verify_directly_issued_by(load_certificate(root_pem))
    except (CertificateError, ValueError, TypeError, InvalidSignature):
        return False
    now = dt.datetime.now(dt.UTC)
    return signer.not_valid_before_utc <= now <= signer.not_valid_after_utc


def firmware_signature_valid(*, content: bytes, signature_b64: str, signing_certificate_pem: str) -> bool:
    """What a charger checks after the download (else it reports InvalidSignature)."""
    try:
        public_key = load_certificate(signing_certificate_pem).public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            return False
        public_key.verify(base64.b64decode(signature_b64), content, ec.ECDSA(hashes.SHA256()))
    except (CertificateError, InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class HashData:
    """OCPP CertificateHashDataType of a certificate (hashes over the issuer's DN and public key)."""

    hash_algorithm: str
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str
    subject: str
    not_after: dt.datetime

    def wire(self) -> dict[str, str]:
        return {
            "hashAlgorithm": self.hash_algorithm,
            "issuerNameHash": self.issuer_name_hash,
            "issuerKeyHash": self.issuer_key_hash,
            "serialNumber": self.serial_number,
        }


def _public_key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's content, what OCSP's issuerKeyHash hashes."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def hash_data(cert: x509.Certificate, issuer: x509.Certificate | None = None) -> HashData:
    """Hash data of `cert`; the issuer's key hash needs the issuer (a self-signed root is its own issuer)."""
    issuer = issuer or cert
    issuer_name = cert.issuer.public_bytes()
    issuer_key = _public_key_bits(issuer)
    return HashData(
        hash_algorithm="SHA256",
        issuer_name_hash=hashlib.sha256(issuer_name).hexdigest(),
        issuer_key_hash=hashlib.sha256(issuer_key).hexdigest(),
        serial_number=format(cert.serial_number, "x"),
        subject=cert.subject.rfc4514_string()[:255],
        not_after=cert.not_valid_after_utc,
    )
