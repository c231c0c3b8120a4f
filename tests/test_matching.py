"""PS3.4 C.2.2.2 attribute matching: Python checks and SQLite prefilters agree."""

from __future__ import annotations

import random
import sqlite3

import pytest
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from printscp.query.matching import (
    InvalidKeyError,
    MatchKind,
    classify,
    fold_pn,
    match_dataset,
    matches,
    matches_datetime_pair,
    normalise,
    sql_condition,
    sql_datetime_pair,
)

# Keys such as "C?" are not valid CS values, which is why C-FIND allows them; pydicom warns.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR")


def elem(keyword: str, value: object) -> DataElement:
    """A data element by keyword with the dictionary's VR (PN... from a str, lists for VM>1)."""
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return DataElement(tag, dictionary_VR(tag), value)


def select(keyword: str, key: object, stored: list[object], **opts: object) -> set[int]:
    """Row numbers of ``stored`` (values of ``keyword``) that SQLite's condition selects."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    for i, value in enumerate(stored):
        column = None if value is None else normalise(elem(keyword, value))
        db.execute("INSERT INTO t VALUES (?, ?)", (i, column))
    condition = sql_condition("t.v", elem(keyword, key), **opts)  # type: ignore[arg-type]
    if condition is None:
        return set(range(len(stored)))
    sql, params = condition
    return {row[0] for row in db.execute(f"SELECT id FROM t WHERE {sql}", params)}


def python(keyword: str, key: object, stored: list[object], **opts: bool) -> set[int]:
    """Row numbers of ``stored`` that :func:`matches` accepts."""
    return {i for i, value in enumerate(stored)
            if matches(elem(keyword, key), None if value is None else elem(keyword, value),
                       **opts)}


def check(keyword: str, key: object, stored: object, expected: bool, **opts: bool) -> None:
    """Python says ``expected`` and SQL (a single-valued column) says the same."""
    got = matches(elem(keyword, key), None if stored is None else elem(keyword, stored),
                  **opts)
    assert got is expected, (keyword, key, stored)
    assert select(keyword, key, [stored], **opts) == ({0} if expected else set())


# -- classification -------------------------------------------------------------------


@pytest.mark.parametrize(("keyword", "value", "kind"), [
    ("PatientName", "", MatchKind.UNIVERSAL),
    ("PatientName", None, MatchKind.UNIVERSAL),
    ("PatientName", "*", MatchKind.UNIVERSAL),
    ("PatientName", "^", MatchKind.UNIVERSAL),
    ("PatientName", "DOE^JOHN", MatchKind.SINGLE_VALUE),
    ("PatientName", "DOE^J*", MatchKind.WILDCARD),
    ("PatientName", '""', MatchKind.EMPTY),
    ("PatientID", "A?C", MatchKind.WILDCARD),
    ("StudyDate", "20261101", MatchKind.SINGLE_VALUE),
    ("StudyDate", "20261101-", MatchKind.RANGE),
    ("StudyDate", "-", MatchKind.UNIVERSAL),
    ("StudyDate", "*", MatchKind.UNIVERSAL),
    ("StudyTime", "1000-1100", MatchKind.RANGE),
    ("AcquisitionDateTime", "20260101-0800", MatchKind.SINGLE_VALUE),
    ("AcquisitionDateTime", "2025-2026", MatchKind.RANGE),
    ("StudyInstanceUID", "1.2.3", MatchKind.SINGLE_VALUE),
    ("StudyInstanceUID", "1.2.*", MatchKind.SINGLE_VALUE),  # no wild cards for UI
    ("StudyInstanceUID", ["1.2.3", "1.2.4"], MatchKind.UID_LIST),
    ("ModalitiesInStudy", ["CT", "MR"], MatchKind.MULTIPLE_VALUES),
    ("SeriesNumber", "", MatchKind.UNIVERSAL),
    ("SeriesNumber", "4", MatchKind.SINGLE_VALUE),
])
def test_classify(keyword: str, value: object, kind: MatchKind) -> None:
    assert classify(elem(keyword, value)) is kind


def test_classify_sequences() -> None:
    assert classify(elem("ProcedureCodeSequence", [])) is MatchKind.UNIVERSAL
    item = Dataset()
    item.CodeValue = ""
    assert classify(elem("ProcedureCodeSequence", [item])) is MatchKind.UNIVERSAL
    item.CodeValue = "XR1"
    assert classify(elem("ProcedureCodeSequence", [item])) is MatchKind.SEQUENCE
    with pytest.raises(InvalidKeyError):
        classify(elem("ProcedureCodeSequence", [item, Dataset()]))


@pytest.mark.parametrize(("keyword", "value"), [
    ("StudyDate", "20261301"), ("StudyDate", "2026-11-01x"), ("StudyTime", "2500"),
    ("StudyDate", "yesterday"), ("AcquisitionDateTime", "2026x-2027"),
])
def test_invalid_keys(keyword: str, value: str) -> None:
    with pytest.raises(InvalidKeyError):
        classify(elem(keyword, value))
    with pytest.raises(InvalidKeyError):
        matches(elem(keyword, value), None)


# -- single value ---------------------------------------------------------------------


@pytest.mark.parametrize(("keyword", "key", "stored", "expected"), [
    ("PatientID", "P1", "P1", True),
    ("PatientID", "P1", "P12", False),
    ("PatientID", "p1", "P1", False),  # case-sensitive except PN
    ("PatientID", " P1 ", "P1", True),  # LO: leading/trailing spaces insignificant
    ("AccessionNumber", "ACC1", "ACC1 ", True),
    ("Modality", "CT", "CT", True),
    ("Modality", "CT", "MR", False),
    ("Modality", "ct", "CT", False),
    ("StudyDescription", "KNEE", "KNEE LEFT", False),
    ("PatientComments", " note", "note", False),  # LT: leading spaces are significant
    ("PatientComments", "note", "note  ", True),
    ("PatientComments", "a\\b", "a\\b", True),  # LT holds backslashes, never split
    ("StudyInstanceUID", "1.2.3", "1.2.3\x00", True),
    ("StudyInstanceUID", "1.2.3", "1.2.30", False),
    ("SeriesNumber", "7", "007", True),  # IS compared as integers
    ("SeriesNumber", "+7", "7", True),
    ("SeriesNumber", "7", "8", False),
    ("PatientWeight", "70.50", "70.5", True),  # DS compared as numbers
    ("PatientWeight", "70", "70.1", False),
    ("PatientAge", "045Y", "045Y", True),
    ("PatientAge", "045Y", "045M", False),
    ("Rows", 512, 512, True),
    ("Rows", 512, 256, False),
    ("StudyDate", "20261101", "20261101", True),
    ("StudyDate", "20261101", "2026.11.01", True),  # ACR-NEMA date form
    ("StudyDate", "20261101", "20261102", False),
    ("StudyTime", "1015", "101530.25", True),  # a value names its whole period
    ("StudyTime", "1015", "101600", False),
    ("StudyTime", "101530", "10:15:30", True),
    ("AcquisitionDateTime", "20260101120000", "20260101120000.5", True),
    ("AcquisitionDateTime", "20260101120000+0100", "20260101110000", True),
    ("PatientName", "DOE^JOHN", "DOE^JOHN", True),
    ("PatientName", "DOE^JOHN", "DOE^JOHN^^^", True),  # trailing delimiters insignificant
    ("PatientName", "DOE^JOHN", "DOE ^ JOHN", True),
    ("PatientName", "DOE^JOHN", "DOE^JOHNNY", False),
    ("PatientName", "DOE", "DOE^JOHN", False),
    ("PatientName", "doe^john", "Doe^John", True),  # PN case-insensitive by default
    ("PatientName", "müller", "MÜLLER", True),
    ("PatientName", "Μάρκος", "ΜΆΡΚΟΣ", True),
])
def test_single_value(keyword: str, key: object, stored: object, expected: bool) -> None:
    check(keyword, key, stored, expected)


def test_pn_case_sensitive_option() -> None:
    check("PatientName", "doe^john", "DOE^JOHN", False, case_insensitive_pn=False)
    check("PatientName", "DOE^JOHN", "DOE^JOHN", True, case_insensitive_pn=False)
    check("PatientName", "doe*", "DOE^JOHN", False, case_insensitive_pn=False)


@pytest.mark.parametrize(("key", "stored", "fuzzy", "expected"), [
    ("MULLER", "Müller", False, False),  # case-insensitive is not accent-insensitive
    ("MULLER", "Müller", True, True),
    ("jose^maria", "JOSÉ^MARÍA", True, True),
    ("jose^maria", "JOSÉ^MARÍA", False, False),
    ("JOS?", "José", False, True),
])
def test_fuzzy_pn(key: str, stored: str, fuzzy: bool, expected: bool) -> None:
    check("PatientName", key, stored, expected, fuzzy_pn=fuzzy)


def test_fold_pn() -> None:
    assert fold_pn("DOE^JOHN") == "doe^john"
    assert fold_pn("Élise=É", fuzzy=True) == "elise=e"
    assert len(fold_pn("STRAßE")) == 6  # one character stays one character


@pytest.mark.parametrize(("key", "stored", "expected"), [
    ("DOE^JOHN", "DOE^JOHN=ドウ^ジョン", True),  # a missing key group constrains nothing
    ("=ドウ^ジョン", "DOE^JOHN=ドウ^ジョン", True),
    ("=ドウ^ジョン", "DOE^JOHN", False),
    ("DOE^JOHN=ドウ^ジョン", "DOE^JOHN=ドウ^ジョン=どう^じょん", True),
    ("DOE^JOHN==どう*", "DOE^JOHN=ドウ^ジョン=どう^じょん", True),
    ("DOE^JOHN==どう*", "DOE^JOHN=ドウ^ジョン", False),
    ("*N", "DOE^JOHN=ドウ^ジョN", True),
    ("*N", "JANE=SMITHN", False),  # * stays inside the alphabetic group
])
def test_pn_component_groups(key: str, stored: str, expected: bool) -> None:
    check("PatientName", key, stored, expected)


# -- wild cards -----------------------------------------------------------------------


@pytest.mark.parametrize(("keyword", "key", "stored", "expected"), [
    ("PatientName", "DOE^J*", "DOE^JOHN", True),
    ("PatientName", "DOE^J*", "DOE^JANE", True),
    ("PatientName", "DOE^J*", "DOE", False),
    ("PatientName", "*SMITH*", "SMITH^JOHN", True),
    ("PatientName", "*SMITH*", "GOLDSMITH^ANN", True),
    ("PatientName", "*SMITH*", "SMYTHE^ANNA", False),
    ("PatientName", "SM?TH*", "SMYTH^A", True),
    ("PatientName", "sm?th*", "SMITH^JOHN", True),
    ("PatientName", "DOE*", "DOE^JOHN", True),  # * spans component delimiters
    ("PatientID", "P?", "P1", True),
    ("PatientID", "P?", "P12", False),
    ("PatientID", "P*", "P12", True),
    ("PatientID", "p*", "P12", False),  # case-sensitive for LO
    ("PatientID", "*", "anything", True),
    ("PatientID", "A%B*", "AXBC", False),  # % and _ are not wild cards
    ("PatientID", "A%B*", "A%BC", True),
    ("PatientID", "A_B", "AXB", False),
    ("PatientID", "A_B", "A_B", True),
    ("PatientID", "A[B]*", "A[B]C", True),
    ("PatientID", "A[B]*", "AB", False),
    ("StudyDescription", "*KNEE*", "KNEE LEFT", True),
    ("StudyDescription", "*knee*", "KNEE LEFT", False),
    ("StudyDescription", "K?EE*", "KNEE", True),
    ("Modality", "C?", "CT", True),
    ("Modality", "C?", "MR", False),
    ("StationName", "ST*1", "STATION1", True),
    ("StudyInstanceUID", "1.2.*", "1.2.3", False),  # UI has no wild cards
    ("AccessionNumber", "?", "", False),
])
def test_wildcards(keyword: str, key: str, stored: str, expected: bool) -> None:
    check(keyword, key, stored, expected)


# -- empty, universal, empty value ----------------------------------------------------


@pytest.mark.parametrize(("key", "kind_matches_empty"), [
    ("", True), ("*", True), ("**", True), ('""', True),
    ("DOE", False), ("D*", False), ("?", False),
])
def test_empty_stored(key: str, kind_matches_empty: bool) -> None:
    for stored in (None, ""):
        check("PatientName", key, stored, kind_matches_empty)


def test_empty_value_matching_rejects_values() -> None:
    check("AccessionNumber", '""', "ACC1", False)
    check("AccessionNumber", '""', None, True)
    check("StudyDate", '""', "20261101", False)


def test_universal_keys_match_everything() -> None:
    for key in ("", None, "*"):
        check("PatientID", key, "P1", True)
    assert sql_condition("v", elem("PatientID", "")) is None
    assert sql_condition("v", elem("PatientID", "*")) is None
    assert sql_condition("v", elem("StudyDate", "-")) is None


# -- dates and times ------------------------------------------------------------------


@pytest.mark.parametrize(("keyword", "key", "stored", "expected"), [
    ("StudyDate", "20261101-20261130", "20261101", True),
    ("StudyDate", "20261101-20261130", "20261130", True),
    ("StudyDate", "20261101-20261130", "20261201", False),
    ("StudyDate", "20261101-20261130", "20261031", False),
    ("StudyDate", "-20261101", "19991231", True),
    ("StudyDate", "-20261101", "20261102", False),
    ("StudyDate", "20261101-", "20301231", True),
    ("StudyDate", "20261101-", "20261031", False),
    ("StudyDate", "20261130-20261101", "20261115", False),  # start after end: nothing
    ("StudyTime", "1000-1100", "100000", True),
    ("StudyTime", "1000-1100", "110059.999", True),  # the upper bound's whole minute
    ("StudyTime", "1000-1100", "110100", False),
    ("StudyTime", "1000-1100", "095959.999999", False),
    ("StudyTime", "100000.5-100001", "100000.4", False),
    ("StudyTime", "100000.5-100001", "100000.5", True),
    ("StudyTime", "100000.5-100001", "100001.999999", True),
    ("StudyTime", "-0800", "0759", True),
    ("StudyTime", "-0800", "0801", False),
    ("StudyTime", "22-", "2330", True),
    ("StudyTime", "2200-0600", "2300", False),  # no wrap around midnight on its own
    ("StudyTime", "1000-1100", "10", True),  # stored hour: its start
    ("AcquisitionDateTime", "20260101-20260131", "20260115083000", True),
    ("AcquisitionDateTime", "20260101-20260131", "20260131235959.999999", True),
    ("AcquisitionDateTime", "20260101-20260131", "20260201", False),
    ("AcquisitionDateTime", "2026-", "20260101000000", True),
    ("AcquisitionDateTime", "-2025", "20260101000000", False),
    ("AcquisitionDateTime", "202602", "20260229", False),  # not a date
    ("AcquisitionDateTime", "202602", "20260228235959", True),
    # offsets: both sides in UTC
    ("AcquisitionDateTime", "20261101000000-0800-20261101235959-0800",
     "20261101070000+0000", False),
    ("AcquisitionDateTime", "20261101000000-0800-20261101235959-0800",
     "20261101090000+0000", True),
    ("AcquisitionDateTime", "20261101000000-0800-20261101235959-0800",
     "20261101230000-0800", True),
    ("AcquisitionDateTime", "-20261101120000+0100", "20261101105900+0000", True),
    ("AcquisitionDateTime", "-20261101120000+0100", "20261101113000+0000", False),
    ("AcquisitionDateTime", "-20261101120000+0100", "20261101120000+0100", True),
    ("AcquisitionDateTime", "20261101-0800", "20261101100000+0000", True),
    ("AcquisitionDateTime", "20261101-0800", "20261101070000+0000", False),
])
def test_ranges(keyword: str, key: str, stored: str, expected: bool) -> None:
    check(keyword, key, stored, expected)


def test_normalise_forms() -> None:
    assert normalise(elem("StudyDate", "2026.11.01")) == "20261101"
    assert normalise(elem("StudyTime", "10")) == "100000.000000"
    assert normalise(elem("StudyTime", "10:15:30.5")) == "101530.500000"
    assert normalise(elem("AcquisitionDateTime", "2026")) == "20260101000000.000000"
    assert normalise(elem("AcquisitionDateTime", "20261231230000-0800")) == \
        "20270101070000.000000"
    assert normalise(elem("PatientName", " Doe ^ John ^^=")) == "Doe^John"
    assert normalise(elem("ModalitiesInStudy", ["CT", "", "MR "])) == "CT\\MR"
    assert normalise(elem("PatientName", "")) is None
    assert normalise(elem("SeriesNumber", "007")) == "7"
    assert normalise(elem("Rows", 512)) == "512"
    assert normalise(elem("ProcedureCodeSequence", [])) is None


COMBINED = [
    # C.2.2.2.5.1: 1 Nov 22:00 to 2 Nov 06:00
    ("20261101-20261102", "2200-0600", "20261101", "2300", True),
    ("20261101-20261102", "2200-0600", "20261102", "0500", True),
    ("20261101-20261102", "2200-0600", "20261102", "060059", True),
    ("20261101-20261102", "2200-0600", "20261101", "2100", False),
    ("20261101-20261102", "2200-0600", "20261102", "0700", False),
    ("20261101-20261102", "2200-0600", "20261101", "1200", False),
    ("20261101-20261102", "2200-0600", "20261102", "1200", False),
    ("20261101-20261102", "2200-0600", "20261101", None, True),  # unknown time: its day
    ("20261101-20261102", "2200-0600", "20261103", None, False),
    ("20261101-", "2200-", "20261101", "2100", False),
    ("20261101-", "2200-", "20261102", "0100", True),
    ("-20261101", "-0600", "20261101", "0500", True),
    ("-20261101", "-0600", "20261101", "0700", False),
    ("-20261101", "-0600", "20261031", "2300", True),
    ("20261101", "0800-1200", "20261101", "0900", True),
    ("20261101", "0800-1200", "20261101", "1300", False),
    ("20261101-20261102", "", "20261102", "2359", True),
    ("20261101-20261102", "", "20261103", "0000", False),
    ("", "2200-0600", "20261101", "2300", False),  # no date: time alone, no wrap
    ("", "0800-1200", "20261101", "0900", True),
    ("20261101-20261102", "2200-0600", None, "2300", False),
]


@pytest.mark.parametrize(("date", "time", "stored_date", "stored_time", "expected"), COMBINED)
def test_combined_datetime(date: str, time: str, stored_date: str | None,
                           stored_time: str | None, expected: bool) -> None:
    keys = (elem("StudyDate", date), elem("StudyTime", time))
    stored = (None if stored_date is None else elem("StudyDate", stored_date),
              None if stored_time is None else elem("StudyTime", stored_time))
    assert matches_datetime_pair(*keys, *stored) is expected

    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (d TEXT, t TEXT)")
    db.execute("INSERT INTO t VALUES (?, ?)",
               tuple(None if s is None else normalise(s) for s in stored))
    condition = sql_datetime_pair("d", "t", *keys)
    rows = db.execute("SELECT count(*) FROM t" +
                      ("" if condition is None else f" WHERE {condition[0]}"),
                      condition[1] if condition else []).fetchone()[0]
    assert rows == (1 if expected else 0)

    identifier, record = Dataset(), Dataset()
    identifier.StudyDate, identifier.StudyTime = date, time
    if stored_date is not None:
        record.StudyDate = stored_date
    if stored_time is not None:
        record.StudyTime = stored_time
    assert match_dataset(identifier, record, combined_datetime=True) is expected


def test_without_combined_matching_date_and_time_are_independent() -> None:
    identifier, record = Dataset(), Dataset()
    identifier.StudyDate, identifier.StudyTime = "20261101-20261102", "2200-0600"
    record.StudyDate, record.StudyTime = "20261101", "2300"
    assert match_dataset(identifier, record) is False
    identifier.StudyTime = "2200-2359"
    assert match_dataset(identifier, record) is True


# -- UID lists and multiple values ----------------------------------------------------


@pytest.mark.parametrize(("key", "stored", "expected"), [
    (["1.2.3", "1.2.4"], "1.2.3", True),
    (["1.2.3", "1.2.4"], "1.2.4", True),
    (["1.2.3", "1.2.4"], "1.2.5", False),
    (["1.2.3", "1.2.4"], "1.2", False),
    ("1.2.3\\1.2.4", "1.2.4", True),
    (["1.2.3", "1.2.4"], None, False),
])
def test_uid_lists(key: object, stored: str | None, expected: bool) -> None:
    check("StudyInstanceUID", key, stored, expected)
    sql = sql_condition("v", elem("StudyInstanceUID", key))
    assert sql is not None and " IN (" in sql[0]


@pytest.mark.parametrize(("keyword", "key", "stored", "expected"), [
    ("ModalitiesInStudy", "CT", ["CT", "MR"], True),
    ("ModalitiesInStudy", "MR", ["CT", "MR"], True),
    ("ModalitiesInStudy", "PT", ["CT", "MR"], False),
    ("ModalitiesInStudy", "C", ["CT", "MR"], False),
    ("ModalitiesInStudy", "M?", ["CT", "MR"], True),
    ("ModalitiesInStudy", "*R", ["CT", "MR"], True),
    ("ModalitiesInStudy", "C*R", ["CT", "MR"], False),  # SQL lets it through; Python not
    ("ModalitiesInStudy", ["PT", "MR"], ["CT", "MR"], True),  # any key value
    ("ModalitiesInStudy", ["PT", "US"], ["CT", "MR"], False),
    ("SOPClassesInStudy", ["1.2.3", "1.2.9"], ["1.2.4", "1.2.3"], True),
    ("SOPClassesInStudy", "1.2.3", ["1.2.30", "1.2.31"], False),
    ("OtherPatientNames", "DOE*", ["SMITH^J", "doe^jane"], True),
    ("OtherPatientNames", "JANE", ["SMITH^J", "doe^jane"], False),
    ("ImageType", "DERIVED", ["ORIGINAL", "PRIMARY"], False),
])
def test_multi_valued_stored(keyword: str, key: object, stored: list[str],
                             expected: bool) -> None:
    assert python(keyword, key, [stored]) == ({0} if expected else set())
    assert select(keyword, key, [stored]) >= python(keyword, key, [stored])


def test_multiple_value_matching_requires_all() -> None:
    stored = [["CT", "MR"], ["CT", "PT"], ["CT"], ["MR"]]
    key = ["CT", "MR"]
    assert python("ModalitiesInStudy", key, stored) == {0, 1, 2, 3}
    both = python("ModalitiesInStudy", key, stored, multiple_value_matching=True)
    assert both == {0}
    assert select("ModalitiesInStudy", key, stored, multiple_value_matching=True) == {0}


def test_single_value_on_multi_valued_column_is_exact() -> None:
    stored: list[object] = [["CT", "MR"], ["CTX"], ["XCT", "M"], None, ["MR", "CT"]]
    assert select("ModalitiesInStudy", "CT", stored) == {0, 4}
    assert python("ModalitiesInStudy", "CT", stored) == {0, 4}


# -- sequences ------------------------------------------------------------------------


def _code(value: str, scheme: str = "DCM") -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator = value, scheme
    return item


def _sps(modality: str, date: str, station: str, protocol: list[Dataset]) -> Dataset:
    item = Dataset()
    item.Modality, item.ScheduledProcedureStepStartDate = modality, date
    item.ScheduledStationAETitle = station
    item.ScheduledProtocolCodeSequence = protocol
    return item


@pytest.fixture
def worklist_item() -> Dataset:
    record = Dataset()
    record.PatientName = "DOE^JANE"
    record.ScheduledProcedureStepSequence = [
        _sps("CT", "20261101", "CT1", [_code("A1"), _code("B2", "99X")]),
        _sps("MR", "20261102", "MR1", [_code("C3")]),
    ]
    return record


@pytest.mark.parametrize(("sps", "expected"), [
    ({}, True),  # item with no keys: universal
    ({"Modality": ""}, True),  # only universal keys: universal
    ({"Modality": "CT"}, True),
    ({"Modality": "US"}, False),
    ({"Modality": "CT", "ScheduledProcedureStepStartDate": "20261101"}, True),
    # both keys must hold in the same item
    ({"Modality": "CT", "ScheduledProcedureStepStartDate": "20261102"}, False),
    ({"Modality": "MR", "ScheduledProcedureStepStartDate": "20261101-"}, True),
    ({"ScheduledStationAETitle": "*1", "Modality": "M?"}, True),
    ({"ScheduledProtocolCodeSequence": [("B2", "99X")]}, True),  # nested
    ({"ScheduledProtocolCodeSequence": [("B2", "DCM")]}, False),
    ({"Modality": "MR", "ScheduledProtocolCodeSequence": [("A1", "")]}, False),
    ({"Modality": "CT", "ScheduledProtocolCodeSequence": [("A1", "")]}, True),
    ({"Modality": "CT", "ScheduledProtocolCodeSequence": [("", "")]}, True),
])
def test_sequence_matching(worklist_item: Dataset, sps: dict[str, object],
                           expected: bool) -> None:
    item = Dataset()
    for keyword, value in sps.items():
        if keyword.endswith("Sequence"):
            value = [_code(*pair) for pair in value]  # type: ignore[attr-defined]
        setattr(item, keyword, value)
    identifier = Dataset()
    identifier.PatientName = "DOE*"
    identifier.ScheduledProcedureStepSequence = [item]
    assert match_dataset(identifier, worklist_item) is expected
    assert sql_condition("v", identifier["ScheduledProcedureStepSequence"]) is None


def test_sequence_key_against_missing_or_empty_sequence() -> None:
    key = elem("ProcedureCodeSequence", [_code("X")])
    assert matches(key, None) is False
    assert matches(key, elem("ProcedureCodeSequence", [])) is False
    assert matches(elem("ProcedureCodeSequence", []), None) is True


def test_sequence_with_combined_datetime() -> None:
    record = Dataset()
    step = Dataset()
    step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime = \
        "20261102", "0300"
    record.ScheduledProcedureStepSequence = [step]
    key = Dataset()
    key.ScheduledProcedureStepStartDate = "20261101-20261102"
    key.ScheduledProcedureStepStartTime = "2200-0600"
    identifier = Dataset()
    identifier.ScheduledProcedureStepSequence = [key]
    assert match_dataset(identifier, record, combined_datetime=True) is True
    assert match_dataset(identifier, record) is False


# -- whole identifiers ----------------------------------------------------------------


def test_match_dataset_ignores_query_attributes() -> None:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.SpecificCharacterSet = "ISO_IR 100"
    identifier.RetrieveAETitle = "X"
    identifier.PatientID = "P1"
    identifier.StudyDate = "20261101-"
    identifier.AccessionNumber = ""
    record = Dataset()
    record.PatientID, record.StudyDate = "P1", "20261115"
    assert match_dataset(identifier, record) is True
    identifier.PatientID = "P2"
    assert match_dataset(identifier, record) is False
    assert match_dataset(identifier, record, skip=[0x00100020]) is True


def test_sql_rejects_odd_column_names() -> None:
    with pytest.raises(ValueError, match="column"):
        sql_condition("v; DROP TABLE t", elem("PatientID", "P1"))


# -- SQL and Python agree on random identifiers ---------------------------------------

ALPHABET = ["A", "B", "a", "é", "É", "%", "_", "[", "]", " ", "^", "="]


def _word(rng: random.Random, chars: list[str], n: int = 4) -> str:
    return "".join(rng.choice(chars) for _ in range(rng.randint(0, n)))


def _pattern(rng: random.Random, value: str, chars: list[str]) -> str:
    """A key derived from ``value`` (so that it often matches) or made up."""
    out = []
    for c in value if rng.random() < 0.7 else _word(rng, chars):
        r = rng.random()
        if r < 0.15:
            out.append("*")
        elif r < 0.25:
            out.append("?")
        elif r < 0.35:
            out.append(c.swapcase())
        elif r > 0.95:
            continue
        else:
            out.append(c)
    if rng.random() < 0.2:
        out.append("*")
    return "".join(out)


def _random_date(rng: random.Random) -> str:
    return f"2026{rng.randint(10, 12):02d}{rng.randint(1, 28):02d}"


def _random_time(rng: random.Random) -> str:
    text = f"{rng.randint(0, 23):02d}"
    for _ in range(rng.randint(0, 2)):
        text += f"{rng.randint(0, 59):02d}"
    if len(text) == 6 and rng.random() < 0.5:
        text += "." + str(rng.randint(0, 999999)).rjust(6, "0")[:rng.randint(1, 6)]
    return text


def _random_dt(rng: random.Random) -> str:
    text = _random_date(rng)[:rng.choice([4, 6, 8, 8])]
    if len(text) == 8:
        text += _random_time(rng)
    if rng.random() < 0.4:
        text += rng.choice(["+", "-"]) + f"{rng.randint(0, 12):02d}{rng.choice([0, 30]):02d}"
    return text


def _range(rng: random.Random, make) -> str:  # type: ignore[no-untyped-def]
    a, b = sorted([make(rng), make(rng)])
    return rng.choice([f"{a}-{b}", f"-{b}", f"{a}-", a])


def _case(rng: random.Random) -> tuple[str, list[object], object]:
    """(keyword, stored values, key) for one random query on a single-valued attribute."""
    kind = rng.choice(["PN", "LO", "CS", "DA", "TM", "DT", "UI", "IS", "LT"])
    if kind == "PN":
        chars = [*ALPHABET[:7], "^"]
        groups = [_word(rng, chars) for _ in range(rng.randint(1, 3))]
        stored = ["=".join(_word(rng, chars) for _ in range(rng.randint(1, 3)))
                  for _ in range(12)]
        base = "=".join(groups) if rng.random() < 0.3 else rng.choice(stored)
        return "PatientName", [*stored, None], _pattern(rng, base, ALPHABET[:9])
    if kind in ("LO", "LT"):
        keyword = "PatientID" if kind == "LO" else "PatientComments"
        stored = [_word(rng, ALPHABET[:10]) for _ in range(12)]
        key = _pattern(rng, rng.choice(stored), ALPHABET[:10])
        return keyword, [*stored, None], key.replace("\\", "")
    if kind == "CS":
        stored = [rng.choice(["CT", "MR", "C_", "C%", "CT ", "MRI"]) for _ in range(8)]
        return "Modality", [*stored, None], _pattern(rng, rng.choice(stored), ["C", "T", "_"])
    if kind == "DA":
        return ("StudyDate", [_random_date(rng) for _ in range(12)] + [None],
                _range(rng, _random_date))
    if kind == "TM":
        return ("StudyTime", [_random_time(rng) for _ in range(12)] + [None],
                _range(rng, _random_time))
    if kind == "DT":
        return ("AcquisitionDateTime", [_random_dt(rng) for _ in range(12)] + [None],
                rng.choice([_random_dt(rng), _range(rng, _random_date),
                            f"{_random_dt(rng)}-"]))
    if kind == "IS":
        stored = [rng.choice(["1", "01", "+1", "2", "10"]) for _ in range(6)]
        return "SeriesNumber", stored, rng.choice(["1", "2", "010", ""])
    uids = [f"1.2.{i}" for i in range(6)]
    key = rng.sample(uids, rng.randint(1, 3)) + (["1.2.9"] if rng.random() < 0.3 else [])
    return "StudyInstanceUID", [*uids, None], key


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8))
def test_sql_equals_python_on_single_valued_columns(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        keyword, stored, key = _case(rng)
        for opts in ({}, {"case_insensitive_pn": False}, {"fuzzy_pn": True}):
            try:
                expected = python(keyword, key, stored, **opts)
            except InvalidKeyError:
                continue
            assert select(keyword, key, stored, **opts) == expected, (keyword, key, opts)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_sql_is_a_superset_on_multi_valued_columns(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        choice = rng.random()
        if choice < 0.4:
            keyword, values = "ModalitiesInStudy", ["CT", "MR", "PT", "C_", "M%", "CTX"]
        elif choice < 0.7:
            keyword, values = "OtherPatientNames", ["DOE^J", "doe^jane", "SMÍTH", "A=B"]
        else:
            keyword, values = "SOPClassesInStudy", ["1.2.1", "1.2.10", "1.2.2"]
        stored: list[object] = [rng.sample(values, rng.randint(1, 3)) for _ in range(10)]
        stored.append(None)
        key: object = _pattern(rng, rng.choice(values), ["C", "M", "D", "_"])
        if keyword == "SOPClassesInStudy":
            key = rng.sample(values, rng.randint(1, 2))
        elif rng.random() < 0.3:
            key = [key, _pattern(rng, rng.choice(values), ["C", "M"])]
        for opts in ({}, {"multiple_value_matching": True}):
            expected = python(keyword, key, stored, **opts)
            assert select(keyword, key, stored, **opts) >= expected, (keyword, key, opts)


@pytest.mark.parametrize("seed", range(4))
def test_combined_sql_equals_python(seed: int) -> None:
    rng = random.Random(seed)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, d TEXT, t TEXT)")
    records = []
    for i in range(40):
        date, time = _random_date(rng), rng.choice([_random_time(rng), None])
        records.append((elem("StudyDate", date),
                        None if time is None else elem("StudyTime", time)))
        db.execute("INSERT INTO t VALUES (?, ?, ?)",
                   (i, normalise(records[-1][0]),
                    None if time is None else normalise(records[-1][1])))  # type: ignore[arg-type]
    for _ in range(60):
        dkey = elem("StudyDate", rng.choice([_range(rng, _random_date), ""]))
        tkey = elem("StudyTime", rng.choice([_range(rng, _random_time), ""]))
        expected = {i for i, (d, t) in enumerate(records)
                    if matches_datetime_pair(dkey, tkey, d, t)}
        condition = sql_datetime_pair("d", "t", dkey, tkey)
        sql = "SELECT id FROM t" + ("" if condition is None else f" WHERE {condition[0]}")
        got = {row[0] for row in db.execute(sql, condition[1] if condition else [])}
        assert got == expected, (dkey.value, tkey.value)
