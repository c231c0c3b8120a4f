"""The QA store (devices, append-only durable tests, history, baseline, latest), the
status of each device (due, overdue) and the EDID a display's identity is read from."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calibration.qa.devices import Device, EdidError, parse_edid, read_edid
from calibration.qa.results import DeviceKind, Figure, TestKind, TestResult, Verdict
from calibration.qa.status import device_status
from calibration.qa.store import SCHEMA_VERSION, QAStore, StoreError

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def display_result(kind: TestKind = TestKind.CONSTANCY, lmax: float = 400.0,
                   error: float = 5.0) -> TestResult:
    return TestResult(DeviceKind.DISPLAY, kind, "tg18", (
        Figure("response_max_error", error, high=10.0, source="AAPM TG18 (2005) §4.3"),
        Figure("lmax", lmax, low=170.0, source="AAPM TG18 (2005) §4.3")),
        series={"levels": [0, 255], "luminance": [0.5, lmax]}, inputs={"file": "m.csv"})


def printer_result(dmax: float = 3.0) -> TestResult:
    return TestResult(DeviceKind.PRINTER, TestKind.ACCEPTANCE, "ps3.14-film",
                      (Figure("dmax", dmax, low=2.9),))


@pytest.fixture
def store(tmp_path: Path) -> QAStore:
    s = QAStore(tmp_path / "qa.sqlite")
    s.add_device(Device("RAD-1", DeviceKind.DISPLAY, "EIZ", "RX660", "12345"))
    s.add_device(Device("DRYFILM", DeviceKind.PRINTER, printer_ae="DRYFILM"))
    yield s
    s.close()


# -- devices ---------------------------------------------------------------------------
def test_devices_are_validated_when_made() -> None:
    d = Device("RAD-1", DeviceKind.DISPLAY)
    assert d.criteria == "tg18" and d.diagnostic
    assert Device("P", DeviceKind.PRINTER).criteria == "ps3.14-film"
    assert Device("R", "display", criteria="din6868-157").kind is DeviceKind.DISPLAY
    for bad, why in [(dict(id=""), "non-empty"), (dict(id="x" * 65), "longer than 64"),
                     (dict(id="a\tb"), "printable"), (dict(id=" a"), "spaces"),
                     (dict(kind="scanner"), "kind"), (dict(criteria="ps3.14-film"), "criteria"),
                     (dict(criteria="tg19"), "criteria"), (dict(printer_ae="AE"), "printers only")]:
        args = {"id": "RAD-1", "kind": DeviceKind.DISPLAY, **bad}
        with pytest.raises(ValueError, match=why):
            Device(**args)
    with pytest.raises(ValueError, match="criteria"):
        Device("P", DeviceKind.PRINTER, criteria="tg18")
    with pytest.raises(ValueError, match="AE title"):
        Device("P", DeviceKind.PRINTER, printer_ae="A" * 17)


def test_site_limits_are_checked_and_kept(tmp_path: Path, store: QAStore) -> None:
    d = Device("RAD-9", DeviceKind.DISPLAY, site_limits={"lmax_change": (-10, 10),
                                                        "white_point_distance": (None, 0.01)})
    assert d.site_limits == (("lmax_change", -10.0, 10.0),
                             ("white_point_distance", None, 0.01))
    store.add_device(d)
    store.close()
    assert QAStore(tmp_path / "qa.sqlite").device("RAD-9").limits == d.limits
    for limits, why in [({"nope": (1, 2)}, "unknown figure"), ({"lmax": (None, None)}, "finite"),
                        ({"lmax": (3, 1)}, "above high"), ({"lmax": (1,)}, "expected")]:
        with pytest.raises(ValueError, match=why):
            Device("X", DeviceKind.DISPLAY, site_limits=limits)


def test_a_version_1_store_is_migrated(tmp_path: Path) -> None:
    """The first schema had no site limits: its devices and tests read on."""
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE devices (id TEXT PRIMARY KEY, kind TEXT NOT NULL,
            manufacturer TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '',
            serial TEXT NOT NULL DEFAULT '', criteria TEXT NOT NULL,
            diagnostic INTEGER NOT NULL DEFAULT 1, description TEXT NOT NULL DEFAULT '',
            printer_ae TEXT NOT NULL DEFAULT '', added TEXT NOT NULL);
        CREATE TABLE tests (id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL,
            at TEXT NOT NULL, kind TEXT NOT NULL, verdict TEXT NOT NULL, criteria TEXT NOT NULL,
            operator TEXT NOT NULL, source TEXT NOT NULL DEFAULT '', baseline_id INTEGER,
            result TEXT NOT NULL);
        INSERT INTO devices VALUES ('RAD-1', 'display', 'EIZ', '', '', 'tg18', 1, '', '',
                                    '2026-01-01T00:00:00.000000Z');
        PRAGMA user_version = 1;""")
    conn.close()
    store = QAStore(path)
    assert store.device("RAD-1").manufacturer == "EIZ" and store.device("RAD-1").limits == {}
    store.record_test("RAD-1", display_result(), operator="jo", when=T0)
    assert len(store.history("RAD-1")) == 1
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_add_list_and_find_devices(store: QAStore) -> None:
    assert [d.id for d in store.devices()] == ["DRYFILM", "RAD-1"]
    rad = store.device("RAD-1")
    assert (rad.manufacturer, rad.model, rad.serial, rad.kind) == \
        ("EIZ", "RX660", "12345", DeviceKind.DISPLAY)
    assert store.device("DRYFILM").printer_ae == "DRYFILM"
    with pytest.raises(ValueError, match="already exists"):
        store.add_device(Device("RAD-1", DeviceKind.DISPLAY))
    with pytest.raises(KeyError, match=r"RAD-2.*known: DRYFILM, RAD-1"):
        store.device("RAD-2")


# -- tests: append-only, durable, ordered ----------------------------------------------
def test_a_recorded_test_survives_reopening_whole(tmp_path: Path, store: QAStore) -> None:
    result = display_result(TestKind.ACCEPTANCE)
    rec = store.record_test("RAD-1", result, operator="jo", when=T0, source="m.csv")
    assert rec.when == T0 and rec.when.tzinfo is UTC and rec.baseline_id is None
    store.close()
    again = QAStore(tmp_path / "qa.sqlite")
    [back] = again.history("RAD-1")
    assert back == rec
    assert back.result.to_json() == result.to_json()
    assert back.result.figure("lmax").limit == "≥ 170 cd/m²"
    conn = sqlite3.connect(tmp_path / "qa.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    again.close()


def test_tests_are_never_updated_or_deleted(tmp_path: Path, store: QAStore) -> None:
    store.record_test("RAD-1", display_result(), operator="jo", when=T0)
    store.record_test("RAD-1", display_result(lmax=300), operator="jo", when=T0)
    assert [r.result.value("lmax") for r in store.history("RAD-1")] == [400.0, 300.0]
    conn = sqlite3.connect(tmp_path / "qa.sqlite")
    for sql in ("UPDATE tests SET verdict = 'pass'", "DELETE FROM tests",
                # REPLACE deletes the row it conflicts with without firing DELETE triggers
                "INSERT OR REPLACE INTO tests (id, device_id, at, kind, verdict, criteria, "
                "operator, source, baseline_id, result) SELECT id, device_id, at, kind, "
                "'pass', criteria, 'forger', source, baseline_id, result FROM tests "
                "WHERE id = 1"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
    # nor may a device go, taking its history with it, or its id pass to another
    for sql, message in (
            ("DELETE FROM devices WHERE id = 'RAD-1'", "never deleted"),
            ("INSERT OR REPLACE INTO devices (id, kind, criteria, added) "
             "VALUES ('RAD-1', 'display', 'tg18', 'x')", "never reused"),
            ("UPDATE devices SET id = 'RAD-9' WHERE id = 'RAD-1'", "keeps its id"),
            ("UPDATE devices SET kind = 'printer' WHERE id = 'RAD-1'", "keeps its id")):
        with pytest.raises(sqlite3.DatabaseError, match=message):
            conn.execute(sql)
    conn.close()
    assert [(r.operator, r.result.value("lmax")) for r in store.history("RAD-1")] == \
        [("jo", 400.0), ("jo", 300.0)]


def test_history_is_oldest_first_and_bounded(store: QAStore) -> None:
    for days in (10, 0, 5, 20):  # recorded out of order (a back-filled paper log)
        store.record_test("RAD-1", display_result(lmax=400 - days), operator="jo",
                          when=T0 + timedelta(days=days))
    assert [r.result.value("lmax") for r in store.history("RAD-1")] == [400, 395, 390, 380]
    window = store.history("RAD-1", since=T0 + timedelta(days=5),
                           until=T0 + timedelta(days=10))
    assert [r.when for r in window] == [T0 + timedelta(days=5), T0 + timedelta(days=10)]
    assert store.history("DRYFILM") == []
    with pytest.raises(KeyError, match="NOPE"):
        store.history("NOPE")


def test_baseline_is_the_latest_acceptance_and_constancy_links_to_it(store: QAStore) -> None:
    assert store.baseline("RAD-1") is None
    early = store.record_test("RAD-1", display_result(TestKind.CONSTANCY), operator="jo",
                              when=T0 - timedelta(days=1))
    assert early.baseline_id is None  # no acceptance yet
    first = store.record_test("RAD-1", display_result(TestKind.ACCEPTANCE), operator="jo",
                              when=T0)
    c1 = store.record_test("RAD-1", display_result(), operator="jo", when=T0 + timedelta(30))
    second = store.record_test("RAD-1", display_result(TestKind.ACCEPTANCE, lmax=350),
                               operator="jo", when=T0 + timedelta(60))
    c2 = store.record_test("RAD-1", display_result(), operator="jo", when=T0 + timedelta(90))
    assert c1.baseline_id == first.id and c2.baseline_id == second.id
    assert store.baseline("RAD-1") == second
    # a constancy test back-dated before the re-acceptance keeps the baseline of its day
    late = store.record_test("RAD-1", display_result(), operator="jo", when=T0 + timedelta(45))
    assert late.baseline_id == first.id
    assert store.baseline("RAD-1").id == second.id


def test_latest_is_each_devices_last_test(store: QAStore) -> None:
    assert store.latest() == {}
    store.record_test("RAD-1", display_result(lmax=380), operator="jo", when=T0 + timedelta(2))
    store.record_test("RAD-1", display_result(lmax=390), operator="jo", when=T0)
    store.record_test("DRYFILM", printer_result(2.5), operator="al", when=T0)
    latest = store.latest()
    assert set(latest) == {"RAD-1", "DRYFILM"}
    assert latest["RAD-1"].result.value("lmax") == 380
    assert latest["DRYFILM"].result.verdict is Verdict.FAIL


def test_bad_records_are_refused(store: QAStore) -> None:
    with pytest.raises(KeyError, match="GHOST"):
        store.record_test("GHOST", display_result(), operator="jo")
    with pytest.raises(ValueError, match="is a printer"):
        store.record_test("DRYFILM", display_result(), operator="jo")
    with pytest.raises(ValueError, match="operator"):
        store.record_test("RAD-1", display_result(), operator=" ")
    with pytest.raises(ValueError, match="time zone"):
        store.record_test("RAD-1", display_result(), operator="jo", when=datetime(2026, 1, 1))
    assert store.history("RAD-1") == []


def test_two_threads_and_two_stores_write_at_once(tmp_path: Path, store: QAStore) -> None:
    other = QAStore(tmp_path / "qa.sqlite")  # as a second process would open it
    errors: list[BaseException] = []

    def write(s: QAStore) -> None:
        try:
            for _ in range(20):
                s.record_test("RAD-1", display_result(), operator="jo")
        except BaseException as exc:  # reported below
            errors.append(exc)
    threads = [threading.Thread(target=write, args=(s,)) for s in (store, store, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(other.history("RAD-1")) == 60
    other.close()


def test_a_foreign_or_newer_file_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "other.sqlite"
    sqlite3.connect(foreign).execute("CREATE TABLE x (y)").connection.commit()
    with pytest.raises(StoreError, match="not a QA store"):
        QAStore(foreign)
    newer = tmp_path / "newer.sqlite"
    QAStore(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        QAStore(newer)
    with pytest.raises(FileNotFoundError):
        QAStore(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()


# -- status ----------------------------------------------------------------------------
def test_status_due_and_overdue_at_a_fixed_now(store: QAStore) -> None:
    store.add_device(Device("NEW", DeviceKind.DISPLAY, criteria="din6868-157"))
    store.record_test("RAD-1", display_result(TestKind.ACCEPTANCE), operator="jo", when=T0)
    store.record_test("RAD-1", display_result(), operator="jo", when=T0 + timedelta(days=10))
    store.record_test("DRYFILM", printer_result(), operator="al", when=T0)
    asked: list[tuple[str, TestKind]] = []

    def interval(criteria: str, kind: TestKind) -> timedelta:
        asked.append((criteria, kind))
        return {"tg18": timedelta(days=30), "ps3.14-film": timedelta(days=7)}[criteria]

    now = T0 + timedelta(days=20)
    by_id = {s.device.id: s for s in device_status(store, now, interval_of=interval)}
    rad, film, new = by_id["RAD-1"], by_id["DRYFILM"], by_id["NEW"]
    assert rad.due == T0 + timedelta(days=40) and not rad.overdue
    assert rad.last.result.kind is TestKind.CONSTANCY
    assert film.due == T0 + timedelta(days=7) and film.overdue
    assert new.last is None and new.due is None and new.overdue and new.never_tested
    assert sorted(asked) == [("ps3.14-film", TestKind.ACCEPTANCE),
                             ("tg18", TestKind.CONSTANCY)]
    # a configured schedule overrides the criteria set's interval
    [_, rad] = [s for s in device_status(store, now, interval_of=interval,
                                         intervals={"tg18": timedelta(days=5)})
                if s.device.id in ("DRYFILM", "RAD-1")]
    assert rad.overdue and rad.to_json()["due"] == "2026-01-20T09:00:00+00:00"


def test_status_uses_the_criteria_sets_intervals(store: QAStore) -> None:
    from calibration.qa.criteria import constancy_interval

    store.record_test("DRYFILM", printer_result(), operator="al", when=T0)
    store.record_test("RAD-1", display_result(), operator="al", when=T0)
    by_id = {s.device.id: s for s in device_status(store, T0 + timedelta(hours=1))}
    assert by_id["DRYFILM"].due == T0 + constancy_interval("ps3.14-film", TestKind.ACCEPTANCE)
    assert by_id["RAD-1"].due == T0 + constancy_interval("tg18", TestKind.CONSTANCY)


# -- EDID ------------------------------------------------------------------------------
def make_edid(serial_text: str | None = "SN-0042", name: str | None = "TEST MON",
              number: int = 0x01020304) -> bytes:
    """A 128-byte EDID 1.4 block by hand: PNP id "EIZ" (E=5, I=9, Z=26), product 0x1234,
    the serial number, week 10 of 2020, and the text descriptors asked for."""
    b = bytearray(128)
    b[0:8] = bytes.fromhex("00ffffffffffff00")
    word = (5 << 10) | (9 << 5) | 26
    b[8:10] = word.to_bytes(2, "big")
    b[10:12] = (0x1234).to_bytes(2, "little")
    b[12:16] = number.to_bytes(4, "little")
    b[16], b[17], b[18], b[19] = 10, 30, 1, 4
    slots = iter((54, 72, 90, 108))
    for tag, text in ((0xFF, serial_text), (0xFC, name)):
        if text is None:
            continue
        offset = next(slots)
        body = (text.encode("ascii") + b"\n").ljust(13, b" ")[:13]
        b[offset:offset + 18] = bytes((0, 0, 0, tag, 0)) + body
    b[127] = (-sum(b[:127])) % 256
    return bytes(b)


def test_edid_identity(tmp_path: Path) -> None:
    path = tmp_path / "edid.bin"
    path.write_bytes(make_edid())
    info = read_edid(path)
    assert info["manufacturer"] == "EIZ" and info["product_code"] == 0x1234
    assert info["serial_number"] == 0x01020304 and info["serial"] == "SN-0042"
    assert info["model"] == "TEST MON" and info["year"] == 2020 and info["week"] == 10
    assert info["version"] == "1.4"
    # without the serial descriptor, the number is the serial; a hex dump reads the same
    bare = make_edid(serial_text=None, name=None)
    assert parse_edid(bare)["serial"] == str(0x01020304) and parse_edid(bare)["model"] == ""
    dump = tmp_path / "edid.txt"
    dump.write_text("EDID:\n" + "\n".join("\t\t" + bare[i:i + 16].hex()
                                           for i in range(0, 128, 16)) + "\n")
    assert read_edid(dump) == parse_edid(bare, "x")


def test_edid_from_the_whole_output_of_xrandr_and_edid_decode(tmp_path: Path) -> None:
    """What a technician saves: all of ``xrandr --verbose`` (several connectors, the EDID
    under one of them) or all of ``edid-decode``'s report, not a bare hex block."""
    edid = make_edid()
    rows = [edid[i:i + 16] for i in range(0, 128, 16)]
    xrandr = tmp_path / "xrandr.txt"
    xrandr.write_text(
        "Screen 0: minimum 320 x 200, current 2560 x 1440, maximum 16384 x 16384\n"
        "HDMI-1 disconnected (normal left inverted right x axis y axis)\n"
        "\tIdentifier: 0x43\n\tTimestamp:  5049\n\tSubpixel:   unknown\n"
        "DP-1 connected primary 2560x1440+0+0 (0x46) normal 597mm x 336mm\n"
        "\tEDID: \n" + "".join(f"\t\t{r.hex()}\n" for r in rows) +
        "\tBroadcast RGB: Automatic\n\t\tsupported: Automatic, Full, Limited 16:235\n"
        "\tCRTC:       0\n")
    decode = tmp_path / "edid-decode.txt"
    decode.write_text(
        "edid-decode (hex):\n\n" + "".join(" ".join(f"{b:02x}" for b in r) + "\n"
                                              for r in rows) +
        "\n----------------\n\nBlock 0, Base EDID:\n  EDID Structure Version & "
        "Revision: 1.4\n  Vendor & Product Identification:\n    Manufacturer: EIZ\n")
    for path in (xrandr, decode):
        assert read_edid(path) == parse_edid(edid, "x"), path.name
    notes = tmp_path / "notes.txt"
    notes.write_text("the panel of room 3\n00 11 22\n")
    with pytest.raises(EdidError, match=r"notes\.txt: not an EDID"):
        read_edid(notes)


def test_bad_edid_names_the_file(tmp_path: Path) -> None:
    good = make_edid()
    cases = {"short.bin": good[:100], "header.bin": b"\x01" + good[1:],
             "sum.bin": good[:127] + bytes([(good[127] + 1) % 256])}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(EdidError, match=r"short\.bin: 100 bytes"):
        read_edid(tmp_path / "short.bin")
    with pytest.raises(EdidError, match=r"header\.bin: not an EDID"):
        read_edid(tmp_path / "header.bin")
    with pytest.raises(EdidError, match=r"sum\.bin: EDID checksum"):
        read_edid(tmp_path / "sum.bin")
    with pytest.raises(EdidError, match=r"none\.bin"):
        read_edid(tmp_path / "none.bin")
