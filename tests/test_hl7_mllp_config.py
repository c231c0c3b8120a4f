"""The ``[hl7]`` section: defaults, one line naming a bad key, the node's bind and
certificate, and the mapping overrides handed to Hl7Settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from printscp.config import ConfigError, Hl7Config, NodeConfig, load_config


def _load(tmp_path: Path, text: str) -> NodeConfig:
    path = tmp_path / "printscp.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_defaults() -> None:
    c = NodeConfig()
    assert c.hl7 == Hl7Config()
    assert (c.hl7.enabled, c.hl7.port, c.hl7.max_message_kb, c.hl7.tls) == (False, 2575,
                                                                            1024, False)
    assert c.hl7_bind == c.bind == "0.0.0.0"


def test_section_read(tmp_path: Path) -> None:
    c = _load(tmp_path, '[node]\nbind = "127.0.0.1"\n[hl7]\nenabled = true\nport = 0\n'
              'idle_timeout = 30\nmax_connections = 4\n[hl7.senders.RIS]\n'
              'accession = "OBR-18"\n[hl7.stations]\nCT = "CT01"\n')
    assert c.hl7.enabled and c.hl7.port == 0 and c.hl7.idle_timeout == 30.0
    assert c.hl7_bind == "127.0.0.1"
    assert c.hl7.senders == {"RIS": {"accession": "OBR-18"}}
    settings = c.hl7.settings()
    assert settings.mapping_for("RIS").accession == ("OBR-18",)
    assert settings.mapping_for("OTHER").accession[0] == "OBR-18"
    assert settings.mapping_for("OTHER").station_aes == {"CT": "CT01"}
    assert settings.mapping_for("RIS").station_aes == {"CT": "CT01"}


def test_field_suffix_spelling(tmp_path: Path) -> None:
    c = _load(tmp_path, '[hl7.senders.RIS]\naccession_field = ["OBR-3.1", "ORC-3.1"]\n')
    assert c.hl7.settings().mapping_for("RIS").accession == ("OBR-3.1", "ORC-3.1")


@pytest.mark.parametrize(("text", "expected"), [
    ("port = 70000", "hl7.port: 70000 is out of range"),
    ('enabled = "yes"', 'hl7.enabled: "yes" is a string; expected true or false'),
    ("max_message_kb = 0", "hl7.max_message_kb: 0 is out of range"),
    ("idle_timeout = 0", "hl7.idle_timeout: 0 is out of range"),
    ('bind = "not a host!"', "hl7.bind:"),
    ("colour = 1", "hl7.colour: unknown key"),
    ('[hl7.stations]\nCT = "A VERY LONG AE TITLE"', "hl7.stations.CT:"),
    ("[hl7.senders.RIS]\naccession = 3", "hl7.senders.RIS.accession:"),
    ('[hl7.senders.RIS]\naccession = "OBR18"', "hl7.senders.RIS.accession: 'OBR18' is not"),
    ('[hl7.senders.RIS]\ncolour = "OBR-1"', "hl7.senders.RIS: unknown mapping keys: colour"),
    ('[hl7.mapping]\nmodality = ["OBR-24", "XX"]', "hl7.mapping.modality: 'XX' is not"),
    ("tls = true", "hl7.tls: needs the node's certificate"),
])
def test_bad_value_names_its_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, "[hl7]\n" + text + "\n")
    message = str(caught.value)
    assert "\n" not in message
    assert expected in message, message
