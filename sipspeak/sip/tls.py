"""Server-side TLS contexts from PEM files (RFC 3261 §26.2.1; RFC 5246, RFC 8446).

Used by the asyncio shells only — the SIP transport's ``tls:`` listeners and the web
server's HTTPS site.  The SIP core never sees TLS: a message that came over TLS is a
message from a stream whose top Via says ``SIP/2.0/TLS``.

``server_context(cert_file, key_file)`` returns an ``ssl.SSLContext`` with the standard
library's server defaults (``ssl.create_default_context(Purpose.CLIENT_AUTH)``) and TLS 1.2
at least (RFC 3261 §26.3.1 asks for TLS; RFC 8996 retires 1.0 and 1.1).  A file that is
missing, unreadable, not PEM, encrypted, or a key that does not belong to the certificate
raises :class:`TlsFileError`, whose text names the setting and the file, so that start-up
can stop with that one line.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Literal

__all__ = ["TlsFileError", "server_context"]

TlsSetting = Literal["tls_cert", "tls_key"]

_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:(?:RSA|EC|DSA|ENCRYPTED) )?PRIVATE KEY-----")
_ENCRYPTED = re.compile(rb"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED")


class TlsFileError(ValueError):
    """A certificate or key file cannot serve TLS.  ``str()``: ``"tls_key: FILE …"``."""

    def __init__(self, setting: TlsSetting, path: str, problem: str) -> None:
        super().__init__(f"{setting}: {path} {problem}")
        self.setting = setting
        self.path = path


def _read(setting: TlsSetting, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise TlsFileError(setting, path, "does not exist") from None
    except IsADirectoryError:
        raise TlsFileError(setting, path, "is a directory, not a PEM file") from None
    except PermissionError:
        raise TlsFileError(setting, path, "cannot be read: permission denied") from None
    except OSError as exc:
        raise TlsFileError(setting, path, f"cannot be read: {exc.strerror}") from None


def _no_passphrase() -> bytes:
    # Never prompt on the terminal: an encrypted key is refused before this is reached,
    # and a service cannot type a passphrase anyway.
    raise ValueError("the private key is encrypted")


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context for ``cert_file`` (PEM chain, the server's certificate first) and
    ``key_file`` (its unencrypted PEM private key).  Raises :class:`TlsFileError`."""
    if _CERTIFICATE not in _read("tls_cert", cert_file):
        raise TlsFileError("tls_cert", cert_file,
                           f"holds no PEM certificate ({_CERTIFICATE.decode()})")
    key = _read("tls_key", key_file)
    if _ENCRYPTED.search(key):
        raise TlsFileError("tls_key", key_file,
                           "is encrypted with a passphrase: give the unencrypted key "
                           "(readable by this service only)")
    if not _PRIVATE_KEY.search(key):
        raise TlsFileError("tls_key", key_file,
                           "holds no PEM private key (-----BEGIN PRIVATE KEY-----)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_passphrase)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise TlsFileError("tls_key", key_file,
                               f"does not match the certificate in {cert_file}") from None
        _check_certificate(cert_file)
        raise TlsFileError("tls_key", key_file,
                           f"cannot be loaded: {exc.reason or exc}") from None
    except ValueError:  # _no_passphrase: encrypted in a way the PEM check did not see
        raise TlsFileError("tls_key", key_file, "is encrypted with a passphrase") from None
    return context


def _check_certificate(cert_file: str) -> None:
    """Blame the certificate file if it alone does not load."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cafile=cert_file)
    except ssl.SSLError as exc:
        raise TlsFileError("tls_cert", cert_file,
                           f"is not a readable PEM certificate: {exc.reason or exc}") from None
