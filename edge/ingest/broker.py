"""Where the broker is and how to reach it: `mqtt[s]://[user:password@]host[:port]` parsed once for
the agent and the simulators, and the TLS files (CA, client certificate, key) checked and loaded.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from edge.errors import TlsConfigError

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """How the agent speaks TLS to the broker: which CA it trusts and which certificate it shows.

    There is no switch to skip verification: a broker with a private CA is trusted by giving that
    CA's file, never by trusting everyone.
    """

    ca_file: Path | None = None  # None: the system's trusted CAs
    cert_file: Path | None = None  # the client certificate (PEM), for brokers that ask for one
    key_file: Path | None = None  # None: the key is in cert_file
    key_password: str | None = field(default=None, repr=False)

    def context(self) -> ssl.SSLContext:
        """A client context (TLS 1.2+, hostname checked); raises TlsConfigError naming the file.

        Built for every connection attempt, so a CA or client certificate renewed on disk is
        used at the next reconnect without a restart.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.ca_file is None:
            context.load_default_certs()
        else:
            _readable("ca_file", self.ca_file)
            try:
                context.load_verify_locations(cafile=str(self.ca_file))
            except ssl.SSLError as exc:
                raise TlsConfigError(
                    f"ca_file {self.ca_file}: not a PEM CA certificate ({_ssl_reason(exc)})"
                ) from exc
        if self.cert_file is None:
            if self.key_file is not None:
                raise TlsConfigError(f"key_file {self.key_file} is given without a cert_file")
            return context
        cert = _readable("cert_file", self.cert_file)
        key_pem = cert if self.key_file is None else _readable("key_file", self.key_file)
        if self.key_file is None and b"PRIVATE KEY-----" not in cert:
            raise TlsConfigError(
                f"cert_file {self.cert_file} holds no private key and no key_file is given"
            )
        password = self.key_password or ""
        try:
            # a callable, never None: with None OpenSSL would prompt on the terminal for the
            # password of an encrypted key, and a service would hang there
            context.load_cert_chain(
                str(self.cert_file),
                None if self.key_file is None else str(self.key_file),
                password=lambda: password,
            )
        except ssl.SSLError as exc:
            key = self.key_file or self.cert_file
            reason = _ssl_reason(exc)
            if "KEY_VALUES_MISMATCH" in reason.upper():
                problem = f"the key in {key} does not belong to the certificate {self.cert_file}"
            elif b"ENCRYPTED" in key_pem:  # PKCS#8 or traditional; OpenSSL says only "PEM lib"
                problem = f"cannot decrypt the key in {key}: wrong or missing key password"
            else:
                problem = f"cannot load {self.cert_file} with the key in {key} ({reason})"
            raise TlsConfigError(problem) from exc
        return context


def _readable(name: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{name} {path}: cannot read: {exc.strerror or exc}") from exc


def _ssl_reason(exc: ssl.SSLError) -> str:
    """OpenSSL's reason for an error, e.g. 'CERTIFICATE_VERIFY_FAILED', else the message."""
    return str(exc.reason or exc.strerror or exc)


# OpenSSL reasons a broker's TLS alert arrives with, and what they mean for the operator
_TLS_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the broker requires a client certificate",
    "TLSV1_ALERT_UNKNOWN_CA": "the broker does not trust our client certificate's CA",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the broker refused our client certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the broker says our client certificate has expired",
    "WRONG_VERSION_NUMBER": "the broker did not answer in TLS (a plain mqtt:// listener?)",
}


def describe_tls_error(exc: ssl.SSLError | ssl.CertificateError) -> str:
    """One line for the log and /healthz, starting with `TLS: `."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or _ssl_reason(exc)
        return f"TLS: the broker's certificate is not accepted: {detail}"
    if isinstance(exc, ssl.SSLError):
        reason = _ssl_reason(exc)
        meaning = _TLS_ALERTS.get(reason.upper())
        return f"TLS: {meaning} ({reason.lower()})" if meaning else f"TLS: {reason.lower()}"
    return f"TLS: {exc}"


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is and how to log in: `mqtt[s]://[user:password@]HOST[:PORT]`."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: TlsConfig | None = None  # None: plain TCP

    def __str__(self) -> str:  # never shows the password
        scheme = "mqtts" if self.tls is not None else "mqtt"
        user = f"{self.username}@" if self.username is not None else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> BrokerAddress:
    """Parse and check a broker URL; raises ValueError naming the problem (never the password).

    `mqtts://` means TLS with the system's CAs (port 8883 by default); the caller replaces `tls`
    to give a CA or a client certificate. User and password are percent-decoded.
    """
    parts = urlsplit(url)
    shown = without_password(url, parts.password)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"broker URL {shown!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError(f"broker URL {shown!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(
            f"broker URL {shown!r} must be {parts.scheme}://HOST:PORT with nothing after the port"
        )
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        raise ValueError(f"broker URL {shown!r} has an invalid port") from None
    return BrokerAddress(
        parts.hostname,
        port,
        None if parts.username is None else unquote(parts.username),
        None if parts.password is None else unquote(parts.password),
        TlsConfig() if parts.scheme == "mqtts" else None,
    )


def without_password(url: str, password: str | None) -> str:
    return url if not password else url.replace(f":{password}@", ":***@", 1)
