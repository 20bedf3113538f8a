"""The dev cluster's PKI, generated at start: a CA, serving certificates, service-account keys, static tokens."""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

_VALID = datetime.timedelta(days=365)


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class StaticToken:
    """One line of kube-apiserver's --token-auth-file: a bearer token for a user in some groups."""

    name: str          # what the token is for (file name of the token under pki/tokens/)
    user: str
    groups: tuple[str, ...]


# The identities of the dev cluster: the admin (system:masters), the control plane's own users (the default
# RBAC bindings give them exactly what they need), and the local components (kwok, Kueue, the fake DRA
# driver, the addons) that act as cluster admins here.
TOKENS: tuple[StaticToken, ...] = (
    StaticToken("admin", "kaic-admin", ("system:masters",)),
    StaticToken("kube-controller-manager", "system:kube-controller-manager", ()),
    StaticToken("kube-scheduler", "system:kube-scheduler", ()),
    StaticToken("components", "kaic-devcluster-components", ("system:masters",)),
)


def _write_key(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)


def make_ca(folder: Path) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("kaic-devcluster-ca")).issuer_name(_name("kaic-devcluster-ca"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_now()).not_valid_after(_now() + _VALID)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .sign(key, hashes.SHA256()))
    pair = KeyPair(folder / "ca.crt", folder / "ca.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pair.key, key)
    return pair


def make_serving(folder: Path, name: str, ca: KeyPair, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
                 ) -> KeyPair:
    """A TLS serving certificate for `hosts` (IPs or DNS names), signed by the CA."""
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_now()).not_valid_after(_now() + _VALID)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pair = KeyPair(folder / f"{name}.crt", folder / f"{name}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pair.key, key)
    return pair


def make_service_account_keys(folder: Path) -> KeyPair:
    """The key kube-apiserver signs service-account tokens with (cert = the public key, PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pair = KeyPair(folder / "sa.pub", folder / "sa.key")
    pair.cert.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    _write_key(pair.key, key)
    return pair


def make_tokens(folder: Path, tokens: tuple[StaticToken, ...] = TOKENS) -> dict[str, str]:
    """Random bearer tokens: the --token-auth-file (tokens.csv) and one file per token; name -> token."""
    values = {t.name: secrets.token_hex(24) for t in tokens}
    lines = []
    for uid, t in enumerate(tokens, start=1):
        groups = f',"{",".join(t.groups)}"' if t.groups else ""
        lines.append(f"{values[t.name]},{t.user},{uid}{groups}")
    (folder / "tokens.csv").write_text("\n".join(lines) + "\n")
    (folder / "tokens.csv").chmod(0o600)
    token_dir = folder / "tokens"
    token_dir.mkdir(exist_ok=True)
    for name, value in values.items():
        (token_dir / name).write_text(value)
        (token_dir / name).chmod(0o600)
    return values


def read_tokens(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text().strip() for p in sorted((folder / "tokens").glob("*"))}
