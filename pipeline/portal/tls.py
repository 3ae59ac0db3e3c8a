"""TLS for the served portal: given certificate files, or a self-signed one made at start.

socrata-py only speaks https; point it at a portal served with TLS and call
`auth.live_dangerously()` (or set REQUESTS_CA_BUNDLE to `server.cert_path`). The certificate is made
with `cryptography` when it is installed, else with the `openssl` command.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

from pipeline.portal.errors import PortalError


def server_context(host: str, cert: str | None, key: str | None):
    """(SSLContext, certificate path, temporary directory to clean up or None)."""
    tmp = None
    if not cert:
        tmp = tempfile.TemporaryDirectory(prefix="route-portal-tls-")
        cert, key = self_signed(host, Path(tmp.name))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key or None)
    except (OSError, ssl.SSLError) as exc:
        if tmp:
            tmp.cleanup()
        raise PortalError(
            500, "tls", f"cannot use the TLS certificate {cert}{' / key ' + key if key else ''}: {exc}"
        ) from None
    return context, str(cert), tmp


def self_signed(host: str, folder: Path) -> tuple[str, str]:
    """A certificate for localhost, 127.0.0.1, ::1 and `host`, valid for 30 days."""
    cert, key = folder / "portal.crt", folder / "portal.key"
    names = {"localhost", "127.0.0.1", "::1", host or "localhost"}
    try:
        _with_cryptography(names, cert, key)
    except ImportError:
        _with_openssl(names, cert, key)
    return str(cert), str(key)


def _with_cryptography(names, cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "route local portal")])
    alt = []
    for name in sorted(names):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _with_openssl(names, cert_path: Path, key_path: Path) -> None:
    if not shutil.which("openssl"):
        raise PortalError(
            500,
            "tls",
            "serving with TLS needs the `cryptography` package or the `openssl` "
            "command; install one, or give --cert and --key",
        )
    alt = ",".join(("IP:" if _is_ip(n) else "DNS:") + n for n in sorted(names))
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=route local portal",
            "-addext",
            f"subjectAltName={alt}",
            "-keyout",
            str(key_path),
            "-out",
            str(cert_path),
        ],
        check=True,
        capture_output=True,
    )


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False
