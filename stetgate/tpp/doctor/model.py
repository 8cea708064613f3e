"""What one check found: an outcome, the rule's source, a sentence, and evidence.

Evidence is what a bank's developer needs to reproduce the finding — statuses, header names and
values, error codes, the failing schema path — and never a token, a code or a key: reports are
meant to be shared with the bank.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

EvidenceValue = str | int | bool | None


class Outcome(StrEnum):
    """``fail`` breaks the cited rule; ``differs`` is allowed by STET but not what the TPP was
    told to expect (or a SHOULD not followed); ``info`` records a value STET leaves open;
    ``skipped`` could not be judged (a check it depends on failed, or the mode cannot run it)."""

    PASS = "pass"  # noqa: S105 - an outcome, not a password
    FAIL = "fail"
    DIFFERS = "differs"
    INFO = "info"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckResult:
    """One rule judged against one bank."""

    check_id: str
    """The check function's name, which names the rule (stable: reports are compared)."""
    title: str
    section: str
    """Where the rule comes from: ``STET v1.4.2 Part I §3.4.3``, ``RFC 7009 §2.2``…"""
    outcome: Outcome
    detail: str
    evidence: Mapping[str, EvidenceValue] = field(default_factory=dict)


@dataclass(frozen=True)
class DoctorReport:
    """Every check of one run, in the order they ran."""

    bank_url: str
    started_at: datetime
    results: tuple[CheckResult, ...]
    expectations: Mapping[str, EvidenceValue] = field(default_factory=dict)
    """What the bank was judged against where STET leaves the choice (`DoctorExpectations`)."""

    def with_outcome(self, outcome: Outcome) -> list[CheckResult]:
        return [r for r in self.results if r.outcome is outcome]

    @property
    def failed(self) -> bool:
        """True when one rule is broken: the command's exit status says so."""
        return any(r.outcome is Outcome.FAIL for r in self.results)

    def counts(self) -> dict[str, int]:
        return {o.value: len(self.with_outcome(o)) for o in Outcome}
