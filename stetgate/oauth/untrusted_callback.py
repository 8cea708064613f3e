"""Why an authorization request's callback cannot be trusted (RFC 6749 §4.1.2.1: a missing,
invalid or mismatching ``redirect_uri``, or a missing or invalid ``client_id`` — "the
authorization server SHOULD inform the resource owner of the error and MUST NOT automatically
redirect").

The answer is a value, not English text: the audit keeps the English ``reason`` it always had,
and the PSU's page says the same thing in the PSU's language from a message catalogue keyed by
`ParameterProblem` (`stetgate.psu.texts`, keys ``refusal_<problem>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

CALLBACK_PARAMETERS: Final = ("client_id", "redirect_uri")
"""The two parameters that decide whether the callback can be trusted."""


class ParameterProblem(Enum):
    """What is wrong with a query parameter; the value is the English wording after the name
    (``"redirect_uri is repeated"``), as the audit and the TPP's ``error_description`` say it."""

    MISSING = "is missing"
    MALFORMED = "is malformed"
    REPEATED = "is repeated"
    TOO_LONG = "is too long"
    BAD_CHARACTERS = "has characters outside %x20-7E"
    UNKNOWN_CLIENT = "is unknown"
    NOT_REGISTERED = "is not registered for this client"

    @property
    def key(self) -> str:
        """The message catalogue's key suffix (``refusal_not_registered``)."""
        return self.name.lower()


@dataclass(frozen=True)
class UntrustedCallback:
    """``parameter`` (one of `CALLBACK_PARAMETERS`) has ``problem``: the PSU gets an error
    page, never a redirect."""

    parameter: str
    problem: ParameterProblem

    @property
    def reason(self) -> str:
        """The English reason of the audit event (unchanged wording: ``unknown client_id``)."""
        if self.problem is ParameterProblem.UNKNOWN_CLIENT:
            return f"unknown {self.parameter}"
        return f"{self.parameter} {self.problem.value}"

    @property
    def code(self) -> str:
        """A stable name for links and tests: ``redirect_uri.not_registered``."""
        return f"{self.parameter}.{self.problem.key}"

    @classmethod
    def from_code(cls, code: str) -> UntrustedCallback | None:
        """The refusal a `code` names, or None for anything else (a link is the browser's
        word)."""
        parameter, _, problem = code.partition(".")
        if parameter not in CALLBACK_PARAMETERS:
            return None
        found = next((p for p in ParameterProblem if p.key == problem), None)
        return None if found is None else cls(parameter, found)
