"""docs/conformance.md and docs/configuration.md against the code, so they cannot drift."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

from pydicom.datadict import tag_for_keyword
from pydicom.tag import Tag

from printscp.app.node import SUPPORTED_CLASSES, TRANSFER_SYNTAXES
from printscp.config import (
    SECTIONS,
    AccessConfig,
    ArchiveConfig,
    AuditConfig,
    Hl7Config,
    HttpConfig,
    LimitsConfig,
    NodeConfig,
    PrinterConfig,
    RemoteAE,
    TlsConfig,
    load_config,
)
from printscp.core import status
from printscp.mpps.steps import MPPS_SOP_CLASS
from printscp.printing.enums import FilmSize, MagnificationType, MediumType
from printscp.services import print_management as pm
from printscp.services.commitment import STORAGE_COMMITMENT
from printscp.services.query_retrieve import QR_CLASSES
from printscp.services.storage import STORAGE_TRANSFER_SYNTAXES
from printscp.services.worklist import WORKLIST_CLASSES
from printscp.worklist.items import WorklistConfig

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_status_code_is_documented():
    text = (DOCS / "conformance.md").read_text()
    for code in status.DESCRIPTIONS:
        assert f"0x{code:04X}" in text, f"status 0x{code:04X} missing"


def test_sop_classes_and_transfer_syntaxes_are_documented():
    text = (DOCS / "conformance.md").read_text()
    for uid in SUPPORTED_CLASSES + [str(t) for t in TRANSFER_SYNTAXES]:
        assert uid in text
    for uid in QR_CLASSES + STORAGE_TRANSFER_SYNTAXES + [STORAGE_COMMITMENT, MPPS_SOP_CLASS,
                                                          *WORKLIST_CLASSES]:
        assert str(uid) in text, uid
    for uid in (pm.uids.BASIC_FILM_SESSION, pm.uids.BASIC_FILM_BOX,
                pm.uids.BASIC_GRAYSCALE_IMAGE_BOX, pm.uids.BASIC_COLOR_IMAGE_BOX,
                pm.uids.BASIC_ANNOTATION_BOX, pm.uids.PRINT_JOB,
                pm.uids.PRINTER, pm.uids.PRINTER_INSTANCE):
        assert uid in text


def test_every_accepted_attribute_is_documented_with_its_tag():
    text = (DOCS / "conformance.md").read_text()
    tables = [pm.SESSION_ATTRIBUTES, pm.FILM_BOX_CREATE_ATTRIBUTES, pm.IMAGE_BOX_ATTRIBUTES,
              pm.COLOR_IMAGE_BOX_ATTRIBUTES, pm.PLUT_ATTRIBUTES, pm.ANNOTATION_BOX_ATTRIBUTES]
    for table in tables:
        for keyword in table:
            tag = Tag(tag_for_keyword(keyword))
            assert f"({tag.group:04X},{tag.element:04X})" in text, keyword
    for keyword in pm.PRINTER_ATTRIBUTES + pm.PRINT_JOB_ATTRIBUTES:
        tag = Tag(tag_for_keyword(keyword))
        assert f"({tag.group:04X},{tag.element:04X})" in text, keyword


def test_defined_terms_are_documented():
    text = (DOCS / "conformance.md").read_text()
    for enum in (FilmSize, MagnificationType, MediumType):
        for member in enum:
            assert member.value in text


def test_every_configuration_key_is_documented_and_the_example_loads():
    text = (DOCS / "configuration.md").read_text()
    for cls in (NodeConfig, AccessConfig, ArchiveConfig, WorklistConfig, HttpConfig,
                TlsConfig, LimitsConfig, AuditConfig, RemoteAE, PrinterConfig, Hl7Config):
        for f in dataclasses.fields(cls):
            if f.name not in SECTIONS:
                assert f"`{f.name}`" in text, f.name
    example = DOCS / "printscp.example.toml"
    config = load_config(example)
    assert config == NodeConfig().validate()
    profiles = load_config(DOCS / "profiles" / "dry-film-imager.toml")
    assert profiles.called_ae_titles == ("PRINTSCP", "PAPER")
    raw = tomllib.loads(example.read_text())
    assert set(raw["node"]) == {f.name for f in dataclasses.fields(NodeConfig)} - set(SECTIONS)
    for name, cls in (("http", HttpConfig), ("tls", TlsConfig), ("limits", LimitsConfig),
                      ("audit", AuditConfig), ("access", AccessConfig), ("hl7", Hl7Config)):
        assert set(raw[name]) == {f.name for f in dataclasses.fields(cls)}, name
    assert set(raw["archive"]) == {f.name for f in dataclasses.fields(ArchiveConfig)}
    assert set(raw["worklist"]) == {f.name for f in dataclasses.fields(WorklistConfig)}
    assert set(raw["printer"]) - {"film_box_defaults", "film_session_defaults"} == {
        f.name for f in dataclasses.fields(PrinterConfig)} - {
        "film_box_defaults", "film_session_defaults"}
    for key in PrinterConfig().film_box_defaults:
        assert key in raw["printer"]["film_box_defaults"] and f"`{key}`" in text


def test_every_target_key_is_documented_and_the_examples_load(tmp_path):
    from printscp.jobs.targets import CupsTarget, DicomTarget, FileTarget, RetryPolicy

    text = (DOCS / "configuration.md").read_text()
    for cls in (FileTarget, CupsTarget, DicomTarget, RetryPolicy):
        for f in dataclasses.fields(cls):
            if f.name != "format":  # spelled as the type
                assert f"`{f.name}`" in text, f"{cls.__name__}.{f.name}"
    # The commented-out targets of the example are valid once uncommented.
    example = (DOCS / "printscp.example.toml").read_text()
    uncommented = "\n".join(line[2:] if re.match(r"# ([a-z_]+ = |\[\[)", line) else line
                             for line in example.splitlines())
    path = tmp_path / "uncommented.toml"
    path.write_text(uncommented)
    kinds = [t.kind.value for t in load_config(path).printer.targets]
    assert kinds == ["pdf", "cups", "dicom"]
