"""The configuration is checked once, when loaded: every key's bad values are one line
naming the file, the key and what is allowed; good values load typed and round-trip.

No server is started: the one CLI check fails at configuration load."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from dataclasses import replace
from enum import Enum
from pathlib import Path

import pytest

from printscp.config import (
    NODE_KEYS,
    AccessConfig,
    ArchiveConfig,
    AuditConfig,
    CompletedSteps,
    ConfigError,
    DuplicatePolicy,
    HttpConfig,
    LimitsConfig,
    NodeConfig,
    PrinterConfig,
    RemoteAE,
    Replaceable,
    TlsConfig,
    WorklistConfig,
    load_config,
)
from printscp.config.model import FILM_BOX_DEFAULTS, FILM_SESSION_DEFAULTS
from printscp.jobs.targets import CupsTarget, DicomTarget, FileTarget, RetryPolicy
from printscp.printing.enums import DecimateCropBehavior, FilmSize, MagnificationType

ROOT = Path(__file__).resolve().parents[1]
CUPS = '[[printer.targets]]\ntype = "cups"\nqueue = "Q"\n'
DICOM = '[[printer.targets]]\ntype = "dicom"\ndestination = "UP@10.0.0.2:104"\n'
PDF = '[[printer.targets]]\ntype = "pdf"\n'


def bad(toml: str, key: str, *words: str) -> tuple[str, str, tuple[str, ...]]:
    return toml, key, words


# (TOML text, the key the message names, words the message holds)
BAD = [
    # -- [node]
    bad('[node]\nae_title = "THIS_IS_TOO_LONG_AE"', "node.ae_title", "1-16"),
    bad('[node]\nae_title = "A\\\\B"', "node.ae_title", "no backslash"),
    bad('[node]\nae_title = ""', "node.ae_title", "AE title"),
    bad("[node]\nae_title = 7", "node.ae_title", "is an integer", "AE title"),
    bad('[node]\nport = "11112"', "node.port", '"11112" is a string', "integer 0-65535"),
    bad("[node]\nport = 70000", "node.port", "out of range", "0-65535"),
    bad("[node]\nport = -1", "node.port", "out of range"),
    bad("[node]\nport = 104.0", "node.port", "is a float"),
    bad("[node]\nport = true", "node.port", "is a boolean"),
    bad('[node]\nbind = "not a host"', "node.bind", "host name or IP address"),
    bad("[node]\nbind = [1]", "node.bind", "is a list"),
    bad('[node]\ndata_dir = ""', "node.data_dir", "non-empty path"),
    bad("[node]\ndata_dir = 3", "node.data_dir", "is an integer"),
    bad("[node]\nmax_pdu = 100", "node.max_pdu", "0 or an integer 4096-4194304"),
    bad('[node]\nmax_pdu = "big"', "node.max_pdu", "is a string"),
    bad("[node]\nmax_associations = -1", "node.max_associations", "integer >= 1"),
    bad("[node]\nmax_associations = 0", "node.max_associations", "out of range"),
    bad("[node]\nnetwork_timeout = 0", "node.network_timeout", "number > 0"),
    bad('[node]\nnetwork_timeout = "60"', "node.network_timeout", "is a string"),
    bad("[node]\nacse_timeout = -5", "node.acse_timeout", "number > 0"),
    bad("[node]\ndimse_timeout = false", "node.dimse_timeout", "is a boolean"),
    bad("[node]\nmax_queued_jobs = 0", "node.max_queued_jobs", "integer >= 1"),
    bad("[node]\ndisk_warning_mb = -1", "node.disk_warning_mb", "integer >= 0"),
    bad("[node]\ndisk_failure_mb = 1.5", "node.disk_failure_mb", "is a float"),
    bad("[node]\ndisk_failure_mb = 2000", "node.disk_failure_mb", "above the warning level"),
    bad("[node]\njob_history_days = -1", "node.job_history_days", "out of range"),
    bad('[http]\nport = "8080"', "http.port", "is a string", "integer 0-65535"),
    bad('[http]\nbind = "not a host"', "http.bind", "host name or IP address"),
    bad('[http]\nenabled = "yes"', "http.enabled", "true or false"),
    bad('[http]\nlisten = "x"', "http.listen", "unknown key"),
    bad("[node]\nworkers = 100", "node.workers", "integer 0-64"),
    bad('[node]\nworkers = "auto"', "node.workers", "is a string"),
    bad("[node]\ncolour = 1", "node.colour", "unknown key", "port"),
    bad("node = [1]", "node", "is a list", "a table"),
    bad("[nodes]\nport = 1", "nodes", "unknown section", "printer"),
    # -- [access]
    bad('[access]\ncalling_ae_titles = "CT1"', "access.calling_ae_titles", "is a string",
        "a list"),
    bad('[access]\ncalling_ae_titles = ["CT1", ""]', "access.calling_ae_titles[1]", "AE title"),
    bad('[access]\ncalling_ae_titles = ["CT1@ct.example"]', "access.calling_ae_titles[0]",
        "AE@ADDRESS (an IP address)"),
    bad('[access]\nrequire_called_ae = "yes"', "access.require_called_ae", "true or false"),
    bad("[access]\nhosts = []", "access.hosts", "unknown key", "calling_ae_titles"),
    *(bad(f'[access]\n{name} = "any"', f"access.{name}", "is a string", "a list")
      for name in ("echo", "store", "query", "retrieve", "print", "worklist", "mpps",
                   "commitment", "events")),
    bad('[access]\nquery = ["known", "CT 1@@x"]', "access.query[1]", '"any", "known"'),
    bad('[access]\nretrieve = ["10.0.0.0/33"]', "access.retrieve[0]", "CIDR"),
    bad("[access]\nstore = [1]", "access.store[0]", "is an integer"),
    # -- [tls]
    bad('[tls]\nenabled = "yes"', "tls.enabled", "true or false"),
    bad("[tls]\nport = 70000", "tls.port", "out of range"),
    bad("[tls]\nenabled = true", "tls.certificate", "PEM file"),
    bad('[tls]\nenabled = true\ncertificate = "c.pem"', "tls.private_key", "PEM file"),
    bad("[tls]\ncertificate = 1", "tls.certificate", "is an integer"),
    bad("[tls]\nprivate_key = []", "tls.private_key", "is a list"),
    bad("[tls]\nca_certificates = 2", "tls.ca_certificates", "is an integer"),
    bad('[tls]\nrequire_client_certificate = "no"', "tls.require_client_certificate",
        "true or false"),
    bad('[tls]\nmin_version = "1.1"', "tls.min_version", "one of 1.2, 1.3"),
    bad("[tls]\nplain = 0", "tls.plain", "true or false"),
    # -- [limits]
    bad("[limits]\nassociations_per_host = -1", "limits.associations_per_host", "out of range"),
    bad("[limits]\nmax_dataset_mb = 0", "limits.max_dataset_mb", "out of range"),
    bad('[limits]\nmax_image_box_mb = "1"', "limits.max_image_box_mb", "is a string"),
    bad("[limits]\nmax_pixel_mb = 1.5", "limits.max_pixel_mb", "is a float"),
    bad("[limits]\nmax_sequence_depth = 5000", "limits.max_sequence_depth", "1-1000"),
    bad("[limits]\nmax_image_boxes = 0", "limits.max_image_boxes", "out of range"),
    bad("[limits]\nmax_film_boxes = true", "limits.max_film_boxes", "is a boolean"),
    bad("[limits]\npending_jobs_per_ae = -3", "limits.pending_jobs_per_ae", "out of range"),
    # -- [audit]
    bad("[audit]\nenabled = 1", "audit.enabled", "true or false"),
    bad("[audit]\nrotate_mb = 0", "audit.rotate_mb", "out of range"),
    bad("[audit]\nkeep_days = -1", "audit.keep_days", "out of range"),
    bad("[audit]\nassociations = \"yes\"", "audit.associations", "true or false"),
    # -- [archive]
    bad('[archive]\nenabled = "yes"', "archive.enabled", '"yes" is a string', "true or false"),
    bad('[archive]\nduplicates = "maybe"', "archive.duplicates", "one of replace, keep"),
    bad("[archive]\nduplicates = 1", "archive.duplicates", "is an integer"),
    bad("[archive]\nstore_films = 1", "archive.store_films", "true or false"),
    bad("[archive]\npath = 1", "archive.path", "unknown key"),
    # -- [worklist]
    bad("[worklist]\nenabled = 0", "worklist.enabled", "true or false"),
    bad('[worklist]\ncompleted = "show"', "worklist.completed", "one of hide, mark"),
    bad("[worklist]\nfoo = 1", "worklist.foo", "unknown key", "completed, enabled"),
    # -- [[remote]]
    bad('[remote]\nae_title = "X"', "remote", "is a table", "[[remote]]"),
    bad("remote = [1]", "remote[0]", "is an integer", "AE@HOST:PORT"),
    bad('remote = ["VIEWER"]', "remote[0]", "AE@HOST:PORT"),
    bad('[[remote]]\nae_title = "TOO_LONG_AE_TITLE_"\nhost = "h"\nport = 104',
        "remote[0].ae_title", "1-16"),
    bad('[[remote]]\nae_title = "V"\nhost = "a b"\nport = 104', "remote[0].host",
        "host name or IP address"),
    bad('[[remote]]\nae_title = "V"\nhost = "h"\nport = "104"', "remote[0].port",
        "is a string", "integer 1-65535"),
    bad('[[remote]]\nae_title = "V"\nhost = "h"\nport = 0', "remote[0].port", "1-65535"),
    bad('[[remote]]\nae_title = "V"\nhost = "h"', "remote[0].port", "missing"),
    bad('[[remote]]\nae_title = "V"\nhost = "h"\nport = 1\nuser = "x"', "remote[0].user",
        "unknown key"),
    bad('remote = ["V@h:1", "V@h:2"]', "remote[1].ae_title", "also remote[0]"),
    bad('[[remote]]\nae_title = "V"\nhost = "h"\nport = 1\ntls = "yes"', "remote[0].tls",
        "true or false"),
    bad('[[remote]]\nae_title = "V"\nhost = "h"\nport = 1\ncertificate = "c.pem"',
        "remote[0].certificate", "both, or neither"),
    bad('[[remote]]\nae_title = "V"\nhost = "h"\nport = 1\nprivate_key = 1',
        "remote[0].private_key", "is an integer"),
    bad('[[remote]]\nae_title = "V"\nhost = "h"\nport = 1\nca_certificates = []',
        "remote[0].ca_certificates", "is a list"),
    # -- [printer]
    bad('[printer]\nae_title = "X\\\\Y"', "printer.ae_title", "AE title"),
    bad('[printer]\nname = ""', "printer.name", "1-64 characters"),
    bad(f'[printer]\nname = "{"N" * 65}"', "printer.name", "1-64 characters"),
    bad('[printer]\nmanufacturer = "A\\\\B"', "printer.manufacturer", "no backslash"),
    bad("[printer]\nmodel = 1", "printer.model", "is an integer", "a string"),
    bad("[printer]\nserial_number = 1", "printer.serial_number", "is an integer"),
    bad("[printer]\noutput_profile = false", "printer.output_profile", "is a boolean",
        "file path"),
    bad("[printer]\ndpi = -300", "printer.dpi", "0 or a number > 0 and <= 1200"),
    bad("[printer]\ndpi = 5000", "printer.dpi", "out of range"),
    bad('[printer]\ndpi = "300"', "printer.dpi", "is a string"),
    bad('[printer]\ndecimate_crop_default = "SHRINK"', "printer.decimate_crop_default",
        "one of DECIMATE, CROP, FAIL"),
    bad('[printer]\ncollation = "no"', "printer.collation", "true or false"),
    bad('[printer]\nreplace_unsupported = ["Trim"]', "printer.replace_unsupported[0]",
        "one of FilmSizeID, MagnificationType, SmoothingType, MinDensity, MaxDensity"),
    bad('[printer]\nfilm_sizes = "A4"', "printer.film_sizes", "is a string", "a list"),
    bad('[printer]\nfilm_sizes = ["A4", "A5"]', "printer.film_sizes[1]", '"A5"', "14INX17IN"),
    bad('[printer]\nfilm_sizes = ["14INX17IN", "14inx17in"]', "printer.film_sizes[1]",
        "listed twice"),
    bad('[printer]\ndisplay_formats = ["GRID"]', "printer.display_formats[0]",
        "STANDARD\\2,3"),
    bad('[printer]\ndisplay_formats = ["CUSTOM\\\\2"]', "printer.display_formats[0]",
        "no layout", "custom_layouts"),
    bad('[printer]\nmagnification_types = ["BICUBIC"]', "printer.magnification_types[0]",
        "REPLICATE, BILINEAR, CUBIC, NONE"),
    bad('[printer]\nsmoothing_types = ["much too long smoothing"]',
        "printer.smoothing_types[0]", "code string"),
    bad("[printer]\nsmoothing_types = [1]", "printer.smoothing_types[0]", "is an integer"),
    bad("[printer]\nmin_density_range = [100, 10]", "printer.min_density_range", "low > high"),
    bad("[printer]\nmin_density_range = [10]", "printer.min_density_range", "[low, high]"),
    bad('[printer]\nmax_density_range = [150, "400"]', "printer.max_density_range[1]",
        "is a string"),
    bad("[printer]\nmax_density_range = 400", "printer.max_density_range", "is an integer"),
    bad('[printer]\ncustom_layouts = ["SLIDE"]', "printer.custom_layouts", "is a list",
        "a table"),
    bad("[printer.custom_layouts]\nSLIDE = [[0, 0, 2, 1]]", "printer.custom_layouts.SLIDE[0][2]",
        "number 0-1"),
    bad("[printer.custom_layouts]\nSLIDE = [[0.5, 0, 0.6, 1]]", "printer.custom_layouts.SLIDE[0]",
        "inside the image area"),
    bad("[printer.custom_layouts]\nSLIDE = []", "printer.custom_layouts.SLIDE", "at least 1"),
    bad('[printer.custom_layouts]\n"STANDARD\\\\1,1" = [[0, 0, 1, 1]]',
        'printer.custom_layouts."STANDARD\\\\1,1"', "SLIDE, SUPERSLIDE or CUSTOM\\i"),
    bad("[printer.annotation_formats]\nBOTTOM9 = 99", "printer.annotation_formats.BOTTOM9",
        "integer 1-64"),
    bad('[printer.annotation_formats]\n"bad id!" = 1', 'printer.annotation_formats."bad id!"',
        "code string"),
    bad('[printer]\nfilm_box_defaults = "A4"', "printer.film_box_defaults", "is a string"),
    bad("[printer.film_box_defaults]\nfoo = 1", "printer.film_box_defaults.foo", "unknown key",
        "film_size_id"),
    bad('[printer.film_box_defaults]\nfilm_size_id = "A5"',
        "printer.film_box_defaults.film_size_id", "14INX17IN"),
    bad('[printer]\nfilm_sizes = ["A4"]', "printer.film_box_defaults.film_size_id",
        "not in film_sizes"),
    bad('[printer.film_box_defaults]\nfilm_orientation = "UPRIGHT"',
        "printer.film_box_defaults.film_orientation", "PORTRAIT, LANDSCAPE"),
    bad('[printer.film_box_defaults]\nmagnification_type = "BICUBIC"',
        "printer.film_box_defaults.magnification_type", "CUBIC"),
    bad('[printer]\nmagnification_types = ["CUBIC"]',
        "printer.film_box_defaults.magnification_type", "not in magnification_types"),
    bad('[printer.film_box_defaults]\nsmoothing_type = "soft-ish"',
        "printer.film_box_defaults.smoothing_type", "code string"),
    bad('[printer.film_box_defaults]\nsmoothing_type = "SOFT"',
        "printer.film_box_defaults.smoothing_type", "not in smoothing_types"),
    bad('[printer.film_box_defaults]\nborder_density = "GREY"',
        "printer.film_box_defaults.border_density", "BLACK, WHITE or an integer"),
    bad("[printer.film_box_defaults]\nempty_image_density = -1",
        "printer.film_box_defaults.empty_image_density", "out of range"),
    bad('[printer.film_box_defaults]\nmin_density = "20"',
        "printer.film_box_defaults.min_density", "is a string"),
    bad("[printer.film_box_defaults]\nmin_density = 500",
        "printer.film_box_defaults.min_density", "outside min_density_range", "0-100"),
    bad("[printer.film_box_defaults]\nmax_density = 10",
        "printer.film_box_defaults.max_density", "outside max_density_range"),
    bad("[printer]\nmin_density_range = [0, 300]\n[printer.film_box_defaults]\nmin_density = 300"
        "\nmax_density = 200", "printer.film_box_defaults.max_density", "greater than Min"),
    bad('[printer.film_box_defaults]\ntrim = "MAYBE"', "printer.film_box_defaults.trim",
        "one of YES, NO"),
    bad(f'[printer.film_box_defaults]\nconfiguration_information = "{"x" * 1025}"',
        "printer.film_box_defaults.configuration_information", "at most 1024"),
    bad("[printer.film_box_defaults]\nillumination = 0",
        "printer.film_box_defaults.illumination", "integer 1-65535"),
    bad("[printer.film_box_defaults]\nreflected_ambient_light = 1e3",
        "printer.film_box_defaults.reflected_ambient_light", "is a float"),
    bad('[printer.film_box_defaults]\nrequested_resolution_id = "ULTRA"',
        "printer.film_box_defaults.requested_resolution_id", "STANDARD, HIGH"),
    bad("[printer.film_session_defaults]\nnumber_of_copies = 0",
        "printer.film_session_defaults.number_of_copies", "integer 1-99"),
    bad('[printer.film_session_defaults]\nprint_priority = "URGENT"',
        "printer.film_session_defaults.print_priority", "HIGH, MED, LOW"),
    bad('[printer.film_session_defaults]\nmedium_type = "VELLUM"',
        "printer.film_session_defaults.medium_type", "BLUE FILM"),
    bad('[printer.film_session_defaults]\nfilm_destination = "TRAY"',
        "printer.film_session_defaults.film_destination", "MAGAZINE, PROCESSOR or BIN_i"),
    bad(f'[printer.film_session_defaults]\nfilm_session_label = "{"x" * 65}"',
        "printer.film_session_defaults.film_session_label", "at most 64"),
    bad(f'[printer.film_session_defaults]\nowner_id = "{"x" * 17}"',
        "printer.film_session_defaults.owner_id", "at most 16"),
    bad("[printer.film_session_defaults]\nmemory_allocation = -1",
        "printer.film_session_defaults.memory_allocation", "out of range"),
    bad('[printer.film_session_defaults]\nillumination = "bright"',
        "printer.film_session_defaults.illumination", "is a string"),
    bad("[printer.film_session_defaults]\nreflected_ambient_light = 70000",
        "printer.film_session_defaults.reflected_ambient_light", "integer 0-65535"),
    bad("[printer.film_session_defaults]\ncolour = 1", "printer.film_session_defaults.colour",
        "unknown key"),
    bad("[printer]\nfoo = 1", "printer.foo", "unknown key", "film_sizes"),
    bad("printer = 3", "printer", "is an integer", "a table"),
    # -- [[printer.targets]]
    bad('[printer]\ntargets = {type = "pdf"}', "printer.targets", "is a table", "a list"),
    bad('[printer]\ntargets = ["pdf"]', "printer.targets[0]", "is a string", "a table"),
    bad('[[printer.targets]]\ndirectory = "films"', "printer.targets[0].type", "missing",
        "pdf, png, tiff, cups, dicom"),
    bad('[[printer.targets]]\ntype = "fax"', "printer.targets[0].type", '"fax"', "cups"),
    bad("[[printer.targets]]\ntype = 1", "printer.targets[0].type", "is an integer"),
    bad(PDF + "id = 5", "printer.targets[0].id", "is an integer", "a string"),
    bad(PDF + PDF, "printer.targets", "two targets named pdf:films"),
    bad(PDF + "retry = 5", "printer.targets[0].retry", "is an integer", "a table"),
    bad(PDF + "retry = {initial_seconds = 0}", "printer.targets[0].retry.initial_seconds",
        "number > 0"),
    bad(PDF + 'retry = {initial_seconds = "5"}', "printer.targets[0].retry.initial_seconds",
        "is a string"),
    bad(PDF + "retry = {initial_seconds = 10, max_seconds = 5}",
        "printer.targets[0].retry.max_seconds", ">= initial_seconds"),
    bad(PDF + "retry = {max_attempts = -1}", "printer.targets[0].retry.max_attempts",
        "integer >= 0"),
    bad(PDF + "retry = {max_attempts = 1.5}", "printer.targets[0].retry.max_attempts",
        "is a float"),
    bad(PDF + "retry = {pause = 1}", "printer.targets[0].retry.pause", "unknown key"),
    bad(PDF + 'directory = "films/{patient}"', "printer.targets[0].directory",
        "unknown field(s) patient"),
    bad(PDF + "directory = 1", "printer.targets[0].directory", "is an integer"),
    bad(PDF + 'name = " "', "printer.targets[0].name", "empty"),
    bad(PDF + 'name = "{label"', "printer.targets[0].name", "expected '}'"),
    bad(PDF + "bits = 16", "printer.targets[0].bits", "8, or 16 for png/tiff"),
    bad(PDF + 'bits = "8"', "printer.targets[0].bits", "is a string"),
    bad(PDF + "colour = 1", "printer.targets[0].colour", "unknown key for a pdf target"),
    bad('[[printer.targets]]\ntype = "cups"', "printer.targets[0].queue",
        "the CUPS queue name is required"),
    bad('[[printer.targets]]\ntype = "cups"\nqueue = 5', "printer.targets[0].queue",
        "is an integer"),
    bad(CUPS + 'server = ""', "printer.targets[0].server", "host[:port]"),
    bad(CUPS + 'paper = "B5"', "printer.targets[0].paper", "A4, A3, LETTER"),
    bad(CUPS + 'fit = "stretch"', "printer.targets[0].fit", "'fit' or 'true-size'"),
    bad(CUPS + "margin_mm = 80", "printer.targets[0].margin_mm", "< 50"),
    bad(CUPS + 'margin_mm = "5"', "printer.targets[0].margin_mm", "is a string", "a number"),
    bad(CUPS + "user = 0", "printer.targets[0].user", "is an integer"),
    bad(CUPS + 'options = "duplex"', "printer.targets[0].options", "is a string", "a table"),
    bad('[[printer.targets]]\ntype = "dicom"\ndestination = "nowhere"',
        "printer.targets[0].destination", "AE@HOST:PORT"),
    bad(DICOM + 'calling_ae = "WAY_TOO_LONG_CALLING"', "printer.targets[0].calling_ae",
        "1-16"),
    bad(DICOM + 'film_sizes = ["9INX9IN"]', "printer.targets[0].film_sizes[0]", "9INX9IN",
        "14INX17IN"),
    bad(DICOM + 'medium_types = "PAPER"', "printer.targets[0].medium_types", "is a string"),
    bad(DICOM + 'magnification_types = ["SINC"]', "printer.targets[0].magnification_types[0]",
        "CUBIC"),
    bad(DICOM + "smoothing_types = [1]", "printer.targets[0].smoothing_types[0]",
        "is an integer"),
    bad(DICOM + "min_density_range = [50, 10]", "printer.targets[0].min_density_range",
        "low > high"),
    bad(DICOM + 'max_density_range = ["0", 400]', "printer.targets[0].max_density_range[0]",
        "is a string"),
    bad(DICOM + "max_bits = 16", "printer.targets[0].max_bits", "8 or 12"),
    bad(DICOM + 'send_label = "yes"', "printer.targets[0].send_label", "true or false"),
    bad(DICOM + "timeout = 0", "printer.targets[0].timeout", "number > 0"),
    bad(DICOM + "follow_print_job = -1", "printer.targets[0].follow_print_job", ">= 0"),
    # -- [printers.NAME]
    bad('[printers.PAPER]\nae_title = "PRINTSCP"', "printers.PAPER.ae_title",
        "no other printer uses"),
    bad('[printers.A]\nname = "A"\n[printers.B]\nae_title = "A"', "printers.B.ae_title",
        "printers.A.ae_title has it"),
    bad('[printers."not an AE title because too long"]\nname = "X"',
        'printers."not an AE title because too long".ae_title', "AE title"),
    bad("[printers.PAPER]\ndpi = -1", "printers.PAPER.dpi", "out of range"),
    bad("[printers.PAPER.film_box_defaults]\nmax_density = 900",
        "printers.PAPER.film_box_defaults.max_density", "150-400"),
    bad("[printers]\nPAPER = 1", "printers.PAPER", "is an integer", "a table"),
]


def _id(row: tuple[str, str, tuple[str, ...]]) -> str:
    return row[1] + ":" + row[0].rsplit("\n", 1)[-1][:30]


@pytest.mark.parametrize(("toml", "key", "words"), BAD, ids=[_id(r) for r in BAD])
def test_a_bad_value_is_one_line_naming_file_key_and_what_is_allowed(tmp_path, toml, key,
                                                                     words):
    path = tmp_path / "printscp.toml"
    path.write_text(toml + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: {key}: "), text
    for word in words:
        assert word in text, text
    assert (caught.value.source, caught.value.key) == (str(path), key)


def _covered() -> set[str]:
    """Keys the table above tests, without list indices and quoted names."""
    keys = set()
    for _, key, _ in BAD:
        plain = re.sub(r"\[\d+\]", "", re.sub(r'\."[^"]*"', ".NAME", key))
        keys.add(re.sub(r"^printers\.(PAPER|A|B|NAME)\.", "printers.NAME.", plain))
    return keys


def test_the_table_covers_every_key():
    expected = {f"node.{k}" for k in NODE_KEYS}
    for section, cls in (("access", AccessConfig), ("archive", ArchiveConfig),
                         ("worklist", WorklistConfig), ("remote", RemoteAE),
                         ("http", HttpConfig), ("tls", TlsConfig), ("limits", LimitsConfig),
                         ("audit", AuditConfig), ("printer", PrinterConfig)):
        expected |= {f"{section}.{f.name}" for f in dataclasses.fields(cls)}
    expected |= {f"printer.film_box_defaults.{k}" for k in FILM_BOX_DEFAULTS}
    expected |= {f"printer.film_session_defaults.{k}" for k in FILM_SESSION_DEFAULTS}
    for cls in (FileTarget, CupsTarget, DicomTarget):
        expected |= {f"printer.targets.{f.name}" for f in dataclasses.fields(cls)
                     if f.name != "format"}
    expected |= {"printer.targets.type", "printers.NAME.ae_title"}
    expected |= {f"printer.targets.retry.{f.name}" for f in dataclasses.fields(RetryPolicy)}
    covered = _covered()
    missing = {k for k in expected
               if not any(c == k or c.startswith(k + ".") for c in covered)}
    assert not missing


# -- good values --------------------------------------------------------------------------
GOOD = """
[node]
ae_title = " NODE1 "
port = 104
bind = "::1"
data_dir = "data"
max_pdu = 0
max_associations = 1
network_timeout = 5
acse_timeout = 0.5
dimse_timeout = 120
max_queued_jobs = 1
disk_warning_mb = 0
disk_failure_mb = 0
workers = 2

[access]
calling_ae_titles = ["CT1", "MR1@10.0.0.5"]
require_called_ae = true

[archive]
enabled = false
duplicates = "KEEP"
store_films = false

[worklist]
enabled = false
completed = "mark"

[[remote]]
ae_title = "VIEWER"
host = "viewer.example.org"
port = 104

[printer]
name = "DRY"
dpi = 150
decimate_crop_default = "crop"
collation = false
replace_unsupported = ["filmsizeid", "MaxDensity"]
film_sizes = ["14inx17in", "A4"]
display_formats = ["standard", "STANDARD\\\\2,3", "custom\\\\1"]
magnification_types = ["cubic", "NONE"]
smoothing_types = ["sharp", "MEDIUM"]
min_density_range = [10, 50]
max_density_range = [250, 360]

[printer.custom_layouts]
"CUSTOM\\\\1" = [[0, 0, 1, 0.5], [0, 0.5, 1, 0.5]]

[printer.annotation_formats]
bottom2 = 2

[printer.film_box_defaults]
film_size_id = "A4"
magnification_type = "CUBIC"
smoothing_type = "SHARP"
border_density = 150
min_density = 20
max_density = 300

[printer.film_session_defaults]
number_of_copies = 2
film_destination = "bin_1"

[[printer.targets]]
type = "png"
bits = 16
retry = {initial_seconds = 1, max_seconds = 2, max_attempts = 3}

[[printer.targets]]
type = "cups"
queue = "Q"
margin_mm = 0

[[printer.targets]]
type = "dicom"
destination = "UP@10.0.0.2:104"
film_sizes = ["14INX17IN"]
follow_print_job = 0

[printers.PAPER]
model = "paper"
"""


def test_good_values_load_typed(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    config = load_config(path)
    assert (config.ae_title, config.port, config.bind, config.max_pdu) == ("NODE1", 104, "::1", 0)
    assert config.network_timeout == 5.0 and isinstance(config.network_timeout, float)
    assert config.access.calling_ae_titles == ("CT1", "MR1@10.0.0.5")
    assert config.archive.duplicates is DuplicatePolicy.KEEP
    assert config.worklist.completed is CompletedSteps.MARK
    assert config.remote == (RemoteAE("VIEWER", "viewer.example.org", 104),)
    printer = config.printer
    assert printer.decimate_crop_default is DecimateCropBehavior.CROP
    assert printer.replace_unsupported == (Replaceable.FILM_SIZE_ID, Replaceable.MAX_DENSITY)
    assert printer.film_sizes == (FilmSize.IN14X17, FilmSize.A4)
    assert printer.magnification_types == (MagnificationType.CUBIC, MagnificationType.NONE)
    assert printer.display_formats == ("STANDARD", "STANDARD\\2,3", "CUSTOM\\1")
    assert printer.smoothing_types == ("SHARP", "MEDIUM")
    assert printer.custom_layouts == {"CUSTOM\\1": ((0, 0, 1, 0.5), (0, 0.5, 1, 0.5))}
    assert printer.annotation_formats == {"BOTTOM2": 2}
    # Partial defaults add to the built-in ones.
    assert printer.film_box_defaults["film_orientation"] == "PORTRAIT"
    assert printer.film_box_defaults["film_size_id"] is FilmSize.A4
    assert printer.film_session_defaults["film_destination"] == "BIN_1"
    assert [t.label for t in printer.targets] == ["png:films", "cups:Q@localhost:631",
                                                  "dicom:UP@10.0.0.2:104"]
    assert config.printers["PAPER"].ae_title == "PAPER"
    # Defined terms compare equal to the strings the services use.
    assert "14INX17IN" in printer.film_sizes and config.worklist.completed == "mark"


def _toml_value(value):
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(value)


def _to_toml(config: NodeConfig) -> str:
    """The configuration written back as a TOML file (every key, inline tables)."""
    remote = [f"{r.ae_title}@{r.host}:{r.port}" for r in config.remote]
    lines = [f"remote = {_toml_value(remote)}", "[node]"]
    lines += [f"{k} = {_toml_value(getattr(config, k))}" for k in NODE_KEYS]
    for name in ("access", "archive", "worklist", "tls", "limits", "audit"):
        section = getattr(config, name)
        lines += [f"[{name}]"] + [f"{f.name} = {_toml_value(getattr(section, f.name))}"
                                  for f in dataclasses.fields(section)]
    for where, printer in [("printer", config.printer),
                           *((f"printers.{n}", p) for n, p in config.printers.items())]:
        lines.append(f"[{where}]")
        for f in dataclasses.fields(printer):
            value = getattr(printer, f.name)
            if f.name == "targets":
                value = [t.to_json() for t in value]
            lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("source", ["good", "example", "profiles"])
def test_good_values_round_trip(tmp_path, source):
    path = {"good": tmp_path / "good.toml", "example": ROOT / "docs" / "printscp.example.toml",
            "profiles": ROOT / "docs" / "profiles" / "dry-film-imager.toml"}[source]
    if source == "good":
        path.write_text(GOOD)
    config = load_config(path)
    again = tmp_path / "again.toml"
    again.write_text(_to_toml(config))
    assert load_config(again) == config
    assert replace(config) == config  # rebuilding from typed values changes nothing


def test_the_example_is_the_defaults():
    assert load_config(ROOT / "docs" / "printscp.example.toml") == NodeConfig() == load_config()


# -- Python construction and command-line overrides ------------------------------------------
def test_sections_built_in_python_check_themselves():
    with pytest.raises(ConfigError, match=r"^node\.port: \"1\" is a string"):
        NodeConfig(port="1")
    with pytest.raises(ConfigError, match=r"^node\.workers: -1 is out of range"):
        replace(NodeConfig(), workers=-1)
    with pytest.raises(ConfigError, match=r"^film_sizes\[0\]: \"B5\""):
        PrinterConfig(film_sizes=("B5",))
    with pytest.raises(ConfigError, match=r"^completed: \"show\""):
        WorklistConfig(completed="show")
    with pytest.raises(ConfigError, match=r"^port: 0 is out of range"):
        RemoteAE("X", "h", 0)
    assert ArchiveConfig(duplicates="keep").duplicates is DuplicatePolicy.KEEP
    assert NodeConfig(data_dir=Path("x")).data_dir == "x"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"port": 70000}, "--port: 70000 is out of range; expected an integer 0-65535"),
    ({"port": "11112"}, '--port: "11112" is a string; expected an integer 0-65535'),
    ({"ae_title": "A" * 17}, "--ae-title: "),
    ({"bind": "no such host!"}, "--bind: "),
    ({"data_dir": ""}, "--data-dir: "),
    ({"workers": -1}, "--workers: -1 is out of range; expected an integer 0-64"),
    ({"colour": 1}, "colour: unknown option"),
])
def test_overrides_are_checked_and_name_the_option(tmp_path, overrides, message):
    path = tmp_path / "ok.toml"
    path.write_text("[node]\nport = 104\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, **overrides)
    assert str(caught.value).startswith(message)
    assert load_config(path, port=None, workers=3).workers == 3  # None: not given


def test_unreadable_files_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml: No such file"):
        load_config(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[node\nport = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(broken)
    assert str(caught.value).startswith(f"{broken}: not valid TOML: ")
    assert "\n" not in str(caught.value)


# -- the command line ---------------------------------------------------------------------
@pytest.mark.slow  # a Python process importing printscp: about a second
def test_serve_with_a_bad_config_prints_one_line_and_exits_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[node]\nport = "11112"\n')
    done = subprocess.run([sys.executable, "-m", "printscp", "serve", "--config", str(path)],
                          capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        f'{path}: node.port: "11112" is a string; expected an integer 0-65535'), lines
    assert not (tmp_path / "printscp-data").exists()  # nothing started
