"""Settings: defaults, the documented file, environment overrides and one-line errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from sipspeak.config import SCHEMA, ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


def test_documented_file_lists_every_setting_with_its_default() -> None:
    documented = tomllib.loads((REPO / "config" / "sipspeak.toml").read_text(encoding="utf-8"))
    assert set(documented) == set(SCHEMA)
    for section, keys in SCHEMA.items():
        assert set(documented[section]) == set(keys), section
        for key, setting in keys.items():
            assert documented[section][key] == setting.default, f"[{section}] {key}"


def test_defaults_without_a_file() -> None:
    cfg = load_config(None, environ={})
    assert cfg.get("web", "listen") == "127.0.0.1:8080"
    assert cfg.database_path == Path("data") / "sipspeak.db"
    assert cfg.recordings_dir == Path("data") / "recordings"


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[web]\nlisten = "0.0.0.0:9000"\n[storage]\ndata_dir = "/srv/ss"\n', encoding="utf-8")
    cfg = load_config(path, environ={"SIPSPEAK_WEB_LISTEN": "127.0.0.1:9100",
                                     "SIPSPEAK_RTP_PORT_MIN": "40000",
                                     "SIPSPEAK_RTP_PORT_MAX": "40999",
                                     "SIPSPEAK_SIP_LISTEN": "udp:127.0.0.1:5070,tcp:127.0.0.1:5070"})
    assert cfg.get("web", "listen") == "127.0.0.1:9100"
    assert cfg.get("rtp", "port_min") == 40000
    assert cfg.get("sip", "listen") == ["udp:127.0.0.1:5070", "tcp:127.0.0.1:5070"]
    assert cfg.database_path == Path("/srv/ss/sipspeak.db")


@pytest.mark.parametrize(
    ("text", "environ", "named"),
    [
        ("[web]\nlisten2 = 'x'\n", {}, "[web] listen2"),
        ("[nosuch]\na = 1\n", {}, "[nosuch]"),
        ("[rtp]\nport_min = 'low'\n", {}, "[rtp] port_min"),
        ("[rtp]\nport_min = 20001\n", {}, "[rtp] port_min"),
        ("[general]\ntimezone = 'Mars/Olympus'\n", {}, "[general] timezone"),
        ("[sip]\nlisten = ['sctp:1.2.3.4:5060']\n", {}, "[sip] listen"),
        ("[web]\nlisten = '127.0.0.1:99999'\n", {}, "[web] listen"),
        ("", {"SIPSPEAK_WEB_LISTN": "1"}, "SIPSPEAK_WEB_LISTN"),
        ("", {"SIPSPEAK_RTP_PORT_MAX": "many"}, "[rtp] port_max"),
        ("[log]\nlevel = 'LOUD'\n", {}, "[log] level"),
        ("[web\n", {}, "s.toml"),
    ],
)
def test_bad_settings_fail_with_one_line_naming_the_key(
    tmp_path: Path, text: str, environ: dict[str, str], named: str
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=environ)
    message = str(info.value)
    assert named in message
    assert "\n" not in message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml", environ={})
