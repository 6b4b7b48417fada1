"""Settings: one schema, a documented TOML file, and environment overrides.

Every setting is declared once in :data:`SCHEMA` with its type and default.  The file
``config/sipspeak.toml`` documents the same keys; ``SIPSPEAK_<SECTION>_<KEY>`` environment
variables override the file.  An unknown key or a wrong value raises :class:`ConfigError`
whose message is one line naming the key, so start-up can stop with that line.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA", "Config", "ConfigError", "load_config", "parse_hostport"]


class ConfigError(ValueError):
    """A setting is unknown or has a wrong value. ``str()`` is one line naming the key."""


def parse_hostport(value: str, *, what: str = "address") -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` for IPv6) and check the port range."""
    value = value.strip()
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
    else:
        host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{what} must be HOST:PORT, got {value!r}")
    number = int(port)
    if not 0 <= number <= 65535:
        raise ValueError(f"port {number} is out of range 0..65535")
    return host, number


def _listen_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of 'transport:host:port' strings")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"{item!r} is not a string")
        transport, _, rest = item.partition(":")
        if transport not in ("udp", "tcp", "tls", "ws"):
            raise ValueError(f"{item!r}: transport must be udp, tcp, tls or ws")
        parse_hostport(rest)
        out.append(item)
    return out


def _networks(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("must be a list of IP addresses or networks (CIDR)")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"{item!r} is not a string")
        try:
            ipaddress.ip_network(item.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
        out.append(item.strip())
    return out


def _addresses(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("must be a list of IP addresses")
    out: list[str] = []
    for item in value:
        try:
            out.append(str(ipaddress.ip_address(str(item).strip())))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address") from None
    return out


def _stun_urls(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("must be a list of stun:host:port URLs")
    for item in value:
        if not isinstance(item, str) or not item.startswith("stun:") or len(item) < 6:
            raise ValueError(f"{item!r} is not a stun:host[:port] URL (RFC 7064)")
    return list(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__}")
    return value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"must be true or false, got {value!r}")


def _int_range(lo: int, hi: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, got {value!r}")
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {value}")
        return value

    return check


def _hostport(value: Any) -> str:
    parse_hostport(_str(value))
    return str(value)


def _path_or_empty(value: Any) -> str:
    # Whether the file exists and holds a certificate is checked at start (sip/tls.py):
    # commands that do not serve (user add, db migrate) must not need it.
    return _str(value).strip()


def _address_or_empty(value: Any) -> str:
    text = _str(value).strip()
    if text:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            if not all(part and len(part) < 64 for part in text.split(".")):
                raise ValueError(f"{text!r} is neither an IP address nor a host name") from None
    return text


def _timezone(value: Any) -> str:
    text = _str(value)
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {text!r}") from None
    return text


def _choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _str(value)
        if text.upper() in options:
            return text.upper()
        if text in options:
            return text
        raise ValueError(f"must be one of {', '.join(options)}, got {text!r}")

    return check


def _sms_url(value: Any) -> str:
    text = _str(value).strip()
    if text and (not text.startswith(("http://", "https://")) or "{to}" not in text
                 or "{text}" not in text):
        raise ValueError("must be an http(s) URL with {to} and {text} in it, or empty")
    return text


def _database_url(value: Any) -> str:
    text = _str(value).strip()
    if text and not text.startswith("sqlite:///"):
        raise ValueError("only sqlite:///PATH is supported (empty = DATA_DIR/sipspeak.db)")
    return text


@dataclass(frozen=True, slots=True)
class Setting:
    default: Any
    check: Callable[[Any], Any]
    doc: str


SCHEMA: dict[str, dict[str, Setting]] = {
    "sip": {
        "listen": Setting(["udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"], _listen_list,
                          "SIP listen addresses as transport:host:port (udp, tcp, tls, ws)"),
        "public_address": Setting("", _address_or_empty,
                                  "address put in SDP and Contact; empty = the listen address"),
        "user_agent": Setting("SipSpeak", _str, "User-Agent / Server header value"),
        "tls_cert": Setting("", _path_or_empty,
                            "PEM certificate chain of the tls: listen addresses"),
        "tls_key": Setting("", _path_or_empty, "PEM private key of [sip] tls_cert"),
    },
    "rtp": {
        "port_min": Setting(20000, _int_range(1024, 65534), "lowest RTP port (even)"),
        "port_max": Setting(30000, _int_range(1025, 65535), "highest RTP port"),
        "inactivity_timeout": Setting(30, _int_range(1, 3600),
                                      "seconds without RTP before a call is ended as lost"),
    },
    "webrtc": {
        "host_addresses": Setting([], _addresses,
                                  "addresses the browser softphones' media (ICE host candidates) "
                                  "is offered on; empty = every non-loopback interface"),
        "stun_servers": Setting([], _stun_urls,
                                "STUN servers (stun:host:port) for a server-reflexive address "
                                "behind NAT; empty = none"),
        "media_timeout": Setting(10, _int_range(1, 3600),
                                 "seconds without audio from a browser before its call ends"),
    },
    "web": {
        "listen": Setting("127.0.0.1:8080", _hostport, "web UI and REST API address"),
        "public_url": Setting("", _str, "URL printed at start and used in links; empty = derived"),
        "trusted_proxies": Setting([], _networks,
                                   "reverse proxies (IPs or CIDRs) whose X-Forwarded-For and "
                                   "X-Forwarded-Proto are believed; empty = none"),
        "tls_cert": Setting("", _path_or_empty,
                            "PEM certificate chain for HTTPS; empty = plain HTTP"),
        "tls_key": Setting("", _path_or_empty, "PEM private key of [web] tls_cert"),
    },
    "storage": {
        "data_dir": Setting("data", _str, "directory for the database, recordings and files"),
        "database_url": Setting("", _database_url, "sqlite:///PATH; empty = DATA_DIR/sipspeak.db"),
        "recordings_dir": Setting("", _str, "call recordings; empty = DATA_DIR/recordings"),
        "files_dir": Setting("", _str, "file manager storage; empty = DATA_DIR/files"),
    },
    "log": {
        "level": Setting("INFO", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "log level"),
    },
    "general": {
        "timezone": Setting("Europe/Moscow", _timezone, "call-center time zone (IANA)"),
        "language": Setting("ru", _choice("ru", "en"), "default UI language"),
    },
    "smtp": {
        "host": Setting("", _str, "mail server for e-mails from client cards; empty = no e-mail"),
        "port": Setting(587, _int_range(1, 65535), "mail server port"),
        "security": Setting("starttls", _choice("starttls", "ssl", "none"),
                            "starttls (RFC 3207), ssl (implicit TLS) or none"),
        "username": Setting("", _str, "login at the mail server; empty = no AUTH"),
        "password": Setting("", _str, "password at the mail server"),
        "from_address": Setting("", _str, "the From of the e-mails"),
        "timeout": Setting(15, _int_range(1, 120), "seconds to wait for the mail server"),
    },
    "sms": {
        "url": Setting("", _sms_url, "SMS gateway URL with {to} and {text}; empty = no SMS"),
        "method": Setting("GET", _choice("GET", "POST"),
                          "GET: the URL as is; POST: its query sent as a form"),
        "success_text": Setting("", _str, "text the gateway's answer must contain; "
                                          "empty = any 2xx answer"),
        "timeout": Setting(15, _int_range(1, 120), "seconds to wait for the gateway"),
    },
    "webhooks": {
        "timeout": Setting(10, _int_range(1, 60),
                           "seconds to wait for a webhook receiver's answer"),
        "concurrency": Setting(4, _int_range(1, 64),
                               "webhook requests in flight at once (one per receiver)"),
    },
    "support": {
        "phone": Setting("", _str, "support hot line shown in the UI (empty = hidden)"),
        "email": Setting("", _str, "support e-mail shown in the UI"),
        "chat_url": Setting("", _str, "support chat link shown in the UI"),
    },
}


class Config:
    """Resolved settings. ``cfg.get("sip", "listen")`` or ``cfg["sip"]["listen"]``."""

    def __init__(self, values: dict[str, dict[str, Any]], source: Path | None) -> None:
        self._values = values
        self.source = source

    def __getitem__(self, section: str) -> Mapping[str, Any]:
        return self._values[section]

    def get(self, section: str, key: str) -> Any:
        return self._values[section][key]

    def with_overrides(self, overrides: Mapping[tuple[str, str], Any]) -> Config:
        values = {section: dict(keys) for section, keys in self._values.items()}
        for (section, key), raw in overrides.items():
            values[section][key] = _check(section, key, raw)
        _cross_checks(values)
        return Config(values, self.source)

    # Paths derived from the storage section.
    @property
    def data_dir(self) -> Path:
        return Path(self.get("storage", "data_dir")).expanduser()

    @property
    def database_path(self) -> Path:
        url = self.get("storage", "database_url")
        return Path(url[len("sqlite:///"):]) if url else self.data_dir / "sipspeak.db"

    @property
    def recordings_dir(self) -> Path:
        value = self.get("storage", "recordings_dir")
        return Path(value) if value else self.data_dir / "recordings"

    @property
    def files_dir(self) -> Path:
        value = self.get("storage", "files_dir")
        return Path(value) if value else self.data_dir / "files"


def _check(section: str, key: str, raw: Any) -> Any:
    setting = SCHEMA.get(section, {}).get(key)
    if setting is None:
        raise ConfigError(f"unknown setting [{section}] {key}")
    try:
        return setting.check(raw)
    except ValueError as exc:
        raise ConfigError(f"[{section}] {key}: {exc}") from None


def _from_env(section: str, key: str, text: str) -> Any:
    default = SCHEMA[section][key].default
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        return text
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            return text
    if isinstance(default, list):
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _cross_checks(values: dict[str, dict[str, Any]]) -> None:
    if values["rtp"]["port_min"] % 2:
        raise ConfigError("[rtp] port_min: must be even (RTP on even ports, RTCP on the next)")
    if values["rtp"]["port_max"] - values["rtp"]["port_min"] < 3:
        raise ConfigError("[rtp] port_max: must be at least port_min + 3")
    for section in ("web", "sip"):
        cert, key = values[section]["tls_cert"], values[section]["tls_key"]
        if bool(cert) != bool(key):
            missing = "tls_key" if cert else "tls_cert"
            raise ConfigError(f"[{section}] {missing}: must be set together with "
                              f"{'tls_cert' if cert else 'tls_key'}")
    tls_listen = [item for item in values["sip"]["listen"] if item.startswith("tls:")]
    if tls_listen and not values["sip"]["tls_cert"]:
        raise ConfigError(f"[sip] tls_cert: the listen address {tls_listen[0]} needs a "
                          "certificate and key ([sip] tls_cert, tls_key)")


ENV_PREFIX = "SIPSPEAK_"


def load_config(path: Path | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read defaults, then the TOML file (if any), then ``SIPSPEAK_<SECTION>_<KEY>`` variables."""
    environ = os.environ if environ is None else environ
    values = {section: {k: s.default for k, s in keys.items()} for section, keys in SCHEMA.items()}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        for section, keys in data.items():
            if section not in SCHEMA:
                raise ConfigError(f"unknown setting section [{section}]")
            if not isinstance(keys, dict):
                raise ConfigError(f"[{section}] must be a table")
            for key, raw in keys.items():
                values[section][key] = _check(section, key, raw)
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _ENV_IGNORED:
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section, _, key = rest.partition("_")
        if section not in SCHEMA or key not in SCHEMA[section]:
            raise ConfigError(f"unknown setting {name} (no [{section}] {key})")
        values[section][key] = _check(section, key, _from_env(section, key, text))
    _cross_checks(values)
    return Config(values, Path(path) if path else None)


# Variables with the prefix that are not settings.
_ENV_IGNORED = frozenset({"SIPSPEAK_CONFIG"})
