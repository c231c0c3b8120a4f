"""The criteria table (calibration.qa.criteria): every limit names its source, unknown
numbers are None with a note, and each set and the printers have a constancy interval."""

from __future__ import annotations

import datetime

import pytest

from calibration.qa.criteria import (
    LIMITS,
    PRINTER_CRITERIA,
    UNIFORMITY,
    CriteriaSet,
    Limit,
    Use,
    constancy_interval,
    limits,
)
from calibration.qa.results import FIGURE_KEYS, TestKind

DISPLAY_KEYS = [k for k, unit in FIGURE_KEYS.items() if unit != "OD"]


def test_every_row_names_its_source_and_says_why_when_it_has_no_number() -> None:
    for row in LIMITS:
        assert row.source, row
        if not row.judged:
            assert row.note, f"{row.criteria} {row.key}: no limit and no note saying why"


@pytest.mark.parametrize("criteria", list(CriteriaSet))
@pytest.mark.parametrize("kind", list(TestKind))
@pytest.mark.parametrize("diagnostic", [True, False])
def test_each_set_speaks_to_every_display_figure_it_could_judge(
        criteria: CriteriaSet, kind: TestKind, diagnostic: bool) -> None:
    rows = limits(criteria, kind, diagnostic)
    expected = {"response_max_error", "lmax", "luminance_ratio", "ambient_ratio",
                "uniformity_max_dev", "white_point_distance"}
    if kind is TestKind.CONSTANCY:
        expected |= {"lmax_change", "lmin_change", "response_change", "white_point_drift"}
    assert expected <= set(rows)
    assert set(rows) <= set(DISPLAY_KEYS)


def test_the_tg18_numbers() -> None:
    diag = limits("tg18", TestKind.ACCEPTANCE, True)
    other = limits("tg18", TestKind.ACCEPTANCE, False)
    assert diag["response_max_error"].high == 10.0
    assert other["response_max_error"].high == 20.0
    assert diag["luminance_ratio"].low == 250.0 and other["luminance_ratio"].low == 100.0
    assert diag["lmax"].low == 170.0 and other["lmax"].low is None
    assert diag["ambient_ratio"].high == pytest.approx(2 / 3)
    assert diag["uniformity_max_dev"].high == 30.0
    assert "200·(Lmax-Lmin)/(Lmax+Lmin)" in diag["uniformity_max_dev"].note


def test_the_din_numbers_follow_the_application_class() -> None:
    diag = limits("din6868-157", TestKind.ACCEPTANCE, True)
    other = limits("din6868-157", TestKind.ACCEPTANCE, False)
    assert (diag["lmax"].low, diag["luminance_ratio"].low,
            diag["response_max_error"].high) == (250.0, 250.0, 10.0)
    assert (other["lmax"].low, other["luminance_ratio"].low,
            other["response_max_error"].high) == (150.0, 100.0, 15.0)
    assert diag["uniformity_max_dev"].high == 25.0
    assert "class III" in diag["lmax"].source


def test_numbers_not_at_hand_are_none() -> None:
    iec = limits("iec62563-2", TestKind.CONSTANCY, True)
    assert all(not row.judged for row in iec.values())
    assert all("not in the sources at hand" in row.note or "site limit" in row.note
               for row in iec.values())
    for criteria in CriteriaSet:  # no source at hand limits a change since the baseline
        rows = limits(criteria, TestKind.CONSTANCY, True)
        assert not rows["lmax_change"].judged and not rows["white_point_drift"].judged


def test_the_constancy_figures_belong_to_constancy_tests_only() -> None:
    assert "lmax_change" not in limits("tg18", TestKind.ACCEPTANCE, True)


def test_a_row_is_checked_when_made() -> None:
    with pytest.raises(ValueError, match="unknown figure"):
        Limit(CriteriaSet.TG18, (TestKind.ACCEPTANCE,), Use.ALL, "sharpness", 1, None, "x")
    with pytest.raises(ValueError, match="low"):
        Limit(CriteriaSet.TG18, (TestKind.ACCEPTANCE,), Use.ALL, "lmax", 3, 2, "x")


def test_each_set_has_a_uniformity_definition() -> None:
    assert set(UNIFORMITY) == set(CriteriaSet)


def test_constancy_intervals() -> None:
    for criteria in CriteriaSet:
        assert constancy_interval(criteria.value) == datetime.timedelta(days=91)
        assert constancy_interval(criteria.value, TestKind.ACCEPTANCE) == \
            datetime.timedelta(days=91)
    assert constancy_interval(PRINTER_CRITERIA) == datetime.timedelta(days=1)
    with pytest.raises(ValueError, match="unknown criteria 'tg99'"):
        constancy_interval("tg99")
