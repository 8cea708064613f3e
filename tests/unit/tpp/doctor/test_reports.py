"""Reports: what the bank answered is escaped in the HTML page, the page needs nothing from
the network, and the JSON keeps every check with its section and evidence."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from stetgate.tpp.doctor.model import CheckResult, DoctorReport, Outcome
from stetgate.tpp.doctor.reports import report_html, report_json
from stetgate.tpp.doctor.runner import CHECKS

HOSTILE = '<script>alert("bank")</script>'


def _report(*results: CheckResult) -> DoctorReport:
    return DoctorReport("https://bank.example", datetime(2026, 1, 2, tzinfo=UTC), results)


def _result(outcome: Outcome, detail: str = "d", **evidence: str | int | None) -> CheckResult:
    return CheckResult("x_check", "X", "RFC 6749 §5.2", outcome, detail, evidence)


def test_bank_text_in_the_html_report_is_escaped() -> None:
    page = report_html(_report(_result(Outcome.FAIL, HOSTILE, echoed=HOSTILE)))
    assert "<script" not in page
    assert "&lt;script&gt;" in page


def test_the_html_report_loads_nothing_from_elsewhere() -> None:
    page = report_html(_report(_result(Outcome.PASS)))
    assert not re.search(r"<(link|script|img)\b", page)
    assert "url(" not in page


def test_one_failed_check_makes_the_report_failed() -> None:
    report = _report(_result(Outcome.PASS), _result(Outcome.FAIL))
    assert report.failed
    assert json.loads(report_json(report))["failed"] is True


def test_differs_info_and_skipped_do_not_fail_the_report() -> None:
    report = _report(_result(Outcome.DIFFERS), _result(Outcome.INFO), _result(Outcome.SKIPPED))
    assert not report.failed
    assert report.counts() == {"pass": 0, "fail": 0, "differs": 1, "info": 1, "skipped": 1}


def test_the_json_report_keeps_section_detail_and_evidence() -> None:
    document = json.loads(report_json(_report(_result(Outcome.FAIL, "why", status=400))))
    assert document["checks"] == [
        {
            "id": "x_check",
            "title": "X",
            "section": "RFC 6749 §5.2",
            "outcome": "fail",
            "detail": "why",
            "evidence": {"status": 400},
        }
    ]


def test_every_check_has_a_unique_id_named_after_its_judge() -> None:
    ids = [c.rule.check_id for c in CHECKS]
    assert len(ids) == len(set(ids))
    assert all(c.rule.check_id == c.judge.__name__ for c in CHECKS)


def test_every_check_cites_stet_an_rfc_or_the_rts() -> None:
    for c in CHECKS:
        assert re.search(r"STET v1\.4\.2 Part I+|RFC \d+ §|RTS", c.rule.section), c.rule
        assert re.search(r"STET v1\.4\.2|RFC \d+|RTS", c.explanation), c.rule.check_id


def test_the_tpp_guide_lists_every_check_with_its_source() -> None:
    guide = (Path(__file__).parents[4] / "docs" / "tpp-guide.md").read_text()
    for c in CHECKS:
        assert f"| `{c.rule.check_id}` | {c.rule.title} | {c.rule.section} |" in guide


def test_the_reports_say_what_the_bank_was_judged_against() -> None:
    report = DoctorReport(
        "https://bank.example",
        datetime(2026, 1, 2, tzinfo=UTC),
        (_result(Outcome.PASS),),
        {"refresh_rotation": "rotated"},
    )
    assert json.loads(report_json(report))["expectations"] == {"refresh_rotation": "rotated"}
    assert "<code>refresh_rotation</code> = rotated" in report_html(report)
