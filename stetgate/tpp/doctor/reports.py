"""The doctor's report as JSON (for CI and comparisons) and as one self-contained HTML page
(inline CSS, no script, no external asset; every value escaped by Jinja2's autoescape — the
bank's answers end up in it)."""

from __future__ import annotations

import json
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from stetgate.tpp.doctor.model import DoctorReport

_templates = Environment(
    loader=PackageLoader("stetgate.tpp.doctor", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def report_document(report: DoctorReport) -> dict[str, Any]:
    return {
        "bank": report.bank_url,
        "started_at": report.started_at.isoformat(),
        "expectations": dict(report.expectations),
        "counts": report.counts(),
        "failed": report.failed,
        "checks": [
            {
                "id": r.check_id,
                "title": r.title,
                "section": r.section,
                "outcome": r.outcome.value,
                "detail": r.detail,
                "evidence": dict(r.evidence),
            }
            for r in report.results
        ],
    }


def report_json(report: DoctorReport) -> str:
    return json.dumps(report_document(report), indent=2, ensure_ascii=False)


def report_html(report: DoctorReport) -> str:
    return _templates.get_template("doctor.html").render(report=report_document(report))
