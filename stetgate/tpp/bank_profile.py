"""Bank profiles: what one STET v1.4.2 bank chose where the standard leaves the choice to it.

STET v1.4.2 names its operations relative to a base each bank picks (Part I §3.4) and leaves
open, or banks disagree on, the ``keyId`` form and the signed headers, PKCE, refresh-token
rotation, token lifetimes, the SCA renewal interval (90 or 180 days, RTS Art. 10a), the
unattended-access window (RTS Art. 36(5)(b)) and whether a register API exists
(docs/decisions.md#where-the-sources-disagree). A profile is a small TOML or JSON file that
states those choices for one bank, validated here with a clear message per bad field.

Every fact a bank's documentation does not give is written ``"unknown"`` (`UNKNOWN`), never
left out as a silent None, so that a comparison with what a bank actually does can say "differs"
or "unknown". Fields left out of a file are ``"unknown"``; only the endpoints the client cannot
work without (authorize, token, API base) are required.

Built-in profiles are package data (``stetgate/tpp/profiles/*.toml``): ``sandbox`` (what
stetgate's own server does with its default settings) and ``bpce`` (only what BPCE's 89C3
documentation says, as docs/decisions.md#sources records it).
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    model_validator,
)

from stetgate.httpsig import KeyIdForm

UNKNOWN: Final = "unknown"
"""The explicit value of every fact a profile does not know."""
NONE: Final = "none"
"""An endpoint the bank documents as absent (no introspection, no RFC 8414 metadata)."""

Unknown = Literal["unknown"]
HttpMethod = Literal["GET", "POST", "PUT", "DELETE"]
METHODS: Final[tuple[HttpMethod, ...]] = ("GET", "POST", "PUT", "DELETE")
BODILESS: Final = frozenset({"GET", "DELETE"})
REQUEST_TARGET: Final = "(request-target)"
PSU_HEADERS: Final = "psu-*"
"""In a signed-header list: every ``PSU-*`` header the request carries (STET signs them all)."""

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_HEADER = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")  # RFC 9110 §5.6.2 token, lower-case
_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")  # RFC 3986 §3.3, no query or fragment
_HOST_URL = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


class ProfileError(ValueError):
    """A profile file that cannot be used: where (file), which field, and why — every problem
    at once, so a profile author fixes them in one go."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {field}: {why}" for field, why in problems]
        super().__init__("\n".join(lines))


# --- field types ----------------------------------------------------------------------------------
def _endpoint(value: Any, *, allow: tuple[str, ...] = ()) -> str:
    """A path of the bank's base URL (``/stet/psd2/oauth/token``) or an absolute ``https`` URL
    (a token endpoint on another host); no query or fragment (RFC 6749 §3.1 and §3.2 allow a
    query on the endpoints, but no STET bank uses one and the client adds its own)."""
    if isinstance(value, str) and value in allow:
        return value
    words = " or ".join(f"'{word}'" for word in allow)
    expected = "a path starting with '/' or an https:// URL" + (f", or {words}" if allow else "")
    if not isinstance(value, str):
        raise ValueError(f"must be {expected}")
    if value.startswith("/"):
        path = value
    elif value.startswith("https://"):
        host = _HOST_URL.match(value)
        if host is None:
            raise ValueError(f"{value!r} has no valid host")
        path = value[host.end() :] or "/"
    else:
        raise ValueError(f"{value!r} is not {expected}")
    if _PATH.fullmatch(path) is None:
        raise ValueError(f"{value!r}: no query, fragment, space or other character outside a path")
    return value


def _optional_endpoint(value: Any) -> str:
    return _endpoint(value, allow=(UNKNOWN, NONE))


def _base_url(value: Any) -> str:
    if value == UNKNOWN:
        return UNKNOWN
    if not isinstance(value, str) or not value.startswith("https://"):
        raise ValueError("must be an https:// URL or 'unknown' (mutual TLS needs TLS)")
    return _endpoint(value.rstrip("/") or value)


def _issuer(value: Any) -> str:
    """RFC 8414 §2 / RFC 9207 §2: the issuer is an https URL; ``base_url`` says it is the
    bank's base URL (stetgate's default)."""
    if value in (UNKNOWN, "base_url"):
        return str(value)
    if not isinstance(value, str) or not value.startswith("https://"):
        raise ValueError("must be 'base_url', an https:// URL or 'unknown'")
    return _endpoint(value)


def _known_int(low: int, high: int, unit: str) -> Any:
    def check(value: Any) -> int | str:
        if value == UNKNOWN:
            return UNKNOWN
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number of {unit} or 'unknown'")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high} {unit}, or 'unknown'")
        return value

    return PlainValidator(check)


def _known_bool(value: Any) -> bool | str:
    if value == UNKNOWN or isinstance(value, bool):
        return value  # type: ignore[no-any-return]
    raise ValueError("must be true, false or 'unknown'")


def _name(value: Any) -> str:
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        raise ValueError("must be 1-63 lower-case letters, digits, '-' or '_', starting with one")
    return value


def _registration_client_id(value: Any) -> str:
    if not isinstance(value, str) or not value or not value.isprintable() or " " in value:
        raise ValueError("must be the bank's generic registration client_id or 'unknown'")
    return value


Endpoint = Annotated[str, PlainValidator(_endpoint)]
OptionalEndpoint = Annotated[str, PlainValidator(_optional_endpoint)]
Seconds = Annotated[int | Unknown, _known_int(1, 400 * 86400, "seconds")]
Days = Annotated[int | Unknown, _known_int(1, 180, "days")]  # RTS Art. 10a: at most 180
PerDay = Annotated[int | Unknown, _known_int(1, 1000, "calls")]
KnownBool = Annotated[bool | Unknown, PlainValidator(_known_bool)]


class _Strict(BaseModel):
    """Frozen, and an unknown key is an error (a typo must not silently mean "unknown")."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- the sections ---------------------------------------------------------------------------------
class Endpoints(_Strict):
    """Where the operations are (STET v1.4.2 Part I §3.4; docs/decisions.md#urls)."""

    base_url: Annotated[str, PlainValidator(_base_url)] = UNKNOWN
    """The bank's base URL when one URL serves every customer; ``unknown`` when the bank runs
    one host per brand (BPCE's banks) and the caller names it (``--bank``)."""
    issuer: Annotated[str, PlainValidator(_issuer)] = UNKNOWN
    """RFC 9207 ``iss`` expected on the callback: ``base_url``, a URL, or ``unknown`` (then an
    ``iss`` that is present is compared with the base URL)."""
    authorize: Endpoint
    token: Endpoint
    revoke: OptionalEndpoint = UNKNOWN
    introspection: OptionalEndpoint = UNKNOWN
    api_base: Endpoint
    """Prefix of the resource API (``accounts`` is ``{api_base}/accounts``)."""


class Discovery(_Strict):
    """RFC 8414 authorization server metadata."""

    metadata: OptionalEndpoint = UNKNOWN
    """Where the metadata document is, ``none`` when the bank has none, ``unknown``."""


def _key_id_forms(value: Any) -> list[KeyIdForm] | str:
    if value == UNKNOWN:
        return UNKNOWN
    words = ", ".join(f"'{form.value}'" for form in KeyIdForm)
    if not isinstance(value, list) or not value:
        raise ValueError(f"must be a list of at least one of {words}, or 'unknown'")
    if any(item not in {form.value for form in KeyIdForm} for item in value):
        raise ValueError(f"the forms are {words}")
    if len(set(value)) != len(value):
        raise ValueError("a form is listed twice")
    return [KeyIdForm(item) for item in value]


def _signed_headers(value: Any) -> dict[str, list[str]] | str:
    if value == UNKNOWN:
        return UNKNOWN
    if not isinstance(value, dict) or not all(
        isinstance(names, list) and all(isinstance(n, str) for n in names)
        for names in value.values()
    ):
        raise ValueError("must be a table of header-name lists per method, or 'unknown'")
    problems = _signed_header_problems(value)
    if problems:
        raise ValueError("; ".join(problems))
    return {method: list(value[method]) for method in METHODS}


class Signature(_Strict):
    """QSealC request signatures (draft-cavage-12 as STET uses it;
    docs/decisions.md#http-signatures)."""

    key_id_forms: Annotated[
        list[KeyIdForm] | Unknown,
        PlainValidator(_key_id_forms),
        PlainSerializer(lambda v: v if v == UNKNOWN else [form.value for form in v]),
    ] = UNKNOWN
    """The ``keyId`` forms the bank accepts, preferred first (``serial_and_issuer`` is
    ``SN=<hex>,CA=<issuer DN>``, ``certificate_url`` a URL of the QSealC, ``registration_kid``
    the ``kid`` given at registration). ``unknown``: the client sends ``SN=…,CA=…``."""
    signed_headers: Annotated[
        dict[HttpMethod, list[str]] | Unknown, PlainValidator(_signed_headers)
    ] = UNKNOWN
    """Per method (GET, POST, PUT, DELETE), the headers to sign: lower-case names,
    ``(request-target)`` among them, ``psu-*`` for every PSU header present. ``unknown``:
    stetgate's policy (`stetgate.httpsig.required_signed_headers` plus ``date``)."""

    def headers_for(self, method: str) -> tuple[str, ...] | None:
        """The list for ``method``, None when the profile does not know it."""
        if isinstance(self.signed_headers, dict):
            return tuple(self.signed_headers[method.upper()])  # type: ignore[index]
        return None


def _signed_header_problems(lists: Mapping[str, list[str]]) -> list[str]:
    problems = [f"no list for {m}" for m in METHODS if m not in lists]
    for method, names in lists.items():
        if method not in METHODS:
            problems.append(f"{method!r} is not one of {', '.join(METHODS)}")
            continue
        if REQUEST_TARGET not in names:
            problems.append(f"{method} must sign (request-target) (STET: path and method)")
        if len(set(names)) != len(names):
            problems.append(f"{method} lists a header twice")
        for name in names:
            if name in (REQUEST_TARGET, PSU_HEADERS):
                continue
            if _HEADER.fullmatch(name) is None:
                problems.append(f"{method}: {name!r} is not a lower-case header name")
            elif name == "digest" and method in BODILESS:
                problems.append(f"{method} requests have no body, so no digest to sign")
            elif name == "signature":
                problems.append(f"{method}: the signature cannot sign itself")
    return problems


class Tokens(_Strict):
    """What the token endpoint hands out (RFC 6749 §5.1, §6)."""

    refresh_rotation: Literal["rotates", "same", "unknown"] = UNKNOWN
    """``rotates``: each refresh returns a new refresh token (OAuth 2.1 §6.1); ``same``: the
    same one comes back (BPCE's newer refresh page). Store what you get either way."""
    access_token_seconds: Seconds = UNKNOWN
    refresh_token_seconds: Seconds = UNKNOWN


class Sca(_Strict):
    """How long one strong authentication carries the authorization (RTS Art. 10a)."""

    validity_days: Days = UNKNOWN


class Unattended(_Strict):
    """Calls without ``PSU-IP-Address`` (RTS Art. 36(5)(b); docs/decisions.md#unattended-access)."""

    limit_per_account_per_day: PerDay = UNKNOWN
    window: Literal["calendar_day", "rolling_24h", "unknown"] = UNKNOWN


class RegistrationApi(_Strict):
    """The register API (RFC 7591/7592 style, BPCE "API register"; docs/register-api.md)."""

    supported: KnownBool = UNKNOWN
    path: OptionalEndpoint = UNKNOWN
    client_id: Annotated[str, PlainValidator(_registration_client_id)] = UNKNOWN
    """The generic ``client_id`` of the registration token request (``client_credentials``)."""
    scope: str = "manageRegistration"

    @model_validator(mode="after")
    def _check(self) -> RegistrationApi:
        if self.supported is True and self.path in (UNKNOWN, NONE):
            raise ValueError("path: supported = true needs the register API's path")
        if self.supported is False and self.path not in (UNKNOWN, NONE):
            raise ValueError("path: supported = false, yet a path is given")
        return self


class BankProfile(_Strict):
    """One bank's choices (the module docstring says why each exists)."""

    name: Annotated[str, PlainValidator(_name)]
    description: str = ""
    stet_version: Literal["1.4.2"] = "1.4.2"
    endpoints: Endpoints
    discovery: Discovery = Discovery()
    signature: Signature = Signature()
    pkce: Literal["required", "supported", "not_supported", "unknown"] = UNKNOWN
    """``required``/``supported``: the client sends S256 PKCE (RFC 7636); ``not_supported``
    and ``unknown``: it does not, unless asked (see `pkce_by_default`)."""
    tokens: Tokens = Tokens()
    sca: Sca = Sca()
    unattended: Unattended = Unattended()
    registration: RegistrationApi = RegistrationApi()

    @property
    def pkce_by_default(self) -> bool:
        """PKCE protects the code only at a bank that checks it. A bank that does not document
        it most likely ignores it (no protection) or, behind a strict gateway, refuses the
        unknown parameter (every authorization fails), so the client sends it by default only
        where the profile says the bank supports it; ``use_pkce=True`` tries anyway."""
        return self.pkce in ("required", "supported")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<profile>") -> BankProfile:
        """Validate ``data``; `ProfileError` lists every bad field with its dotted path."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ProfileError(source, _problems(exc)) from None

    def to_toml(self) -> str:
        """The profile as a TOML file (what ``stetgate tpp profiles --show`` prints)."""
        return _toml(self.model_dump(mode="json"))


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(profile)"
        why = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            why = "unknown field (a typo? every field is listed in docs/tpp-guide.md)"
        elif item["type"] == "missing":
            why = "required"
        problems.append((field, why))
    return problems


def _toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """A small TOML writer for profiles: scalars, lists of scalars, nested tables."""
    lines = [f"{key} = {json.dumps(value)}" for key, value in data.items() if not _table(value)]
    for key, value in data.items():
        if _table(value):
            name = f"{prefix}{key}"
            lines += ["", f"[{name}]", _toml(value, f"{name}.").strip("\n")]
    return "\n".join(line for line in lines) + "\n"


def _table(value: Any) -> bool:
    return isinstance(value, dict)


# --- loading --------------------------------------------------------------------------------------
BUILTIN_FOLDER: Final = "profiles"


def load_profile(path: Path) -> BankProfile:
    """Read and validate a ``.toml`` or ``.json`` profile."""
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ProfileError(source, [("(file)", "a profile is a .toml or .json file")])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(source, [("(file)", f"cannot be read: {exc}")]) from None
    return parse_profile(text, suffix.lstrip("."), source)


def parse_profile(text: str, kind: str, source: str) -> BankProfile:
    try:
        data: Any = tomllib.loads(text) if kind == "toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ProfileError(source, [("(file)", f"not valid {kind.upper()}: {exc}")]) from None
    if not isinstance(data, dict):
        raise ProfileError(source, [("(file)", "the top level must be a table (an object)")])
    return BankProfile.from_mapping(data, source)


@functools.cache
def _builtin_names() -> tuple[str, ...]:
    folder = resources.files("stetgate.tpp").joinpath(BUILTIN_FOLDER)
    names = (item.name for item in folder.iterdir() if item.name.endswith(".toml"))
    return tuple(sorted(name.removesuffix(".toml") for name in names))


def builtin_profile_names() -> list[str]:
    return list(_builtin_names())


@functools.cache
def builtin_profile(name: str) -> BankProfile:
    """A profile shipped with stetgate (`builtin_profile_names`); read once (profiles are
    frozen)."""
    if name not in builtin_profile_names():
        known = ", ".join(builtin_profile_names())
        raise ProfileError(
            name, [("(name)", f"no built-in profile of that name (built in: {known})")]
        )
    item = resources.files("stetgate.tpp").joinpath(BUILTIN_FOLDER, f"{name}.toml")
    return parse_profile(item.read_text(encoding="utf-8"), "toml", f"built-in {name}")


def resolve_profile(reference: str) -> BankProfile:
    """``--profile``: a built-in name, else a file path."""
    if reference in builtin_profile_names():
        return builtin_profile(reference)
    path = Path(reference)
    if not path.exists():
        known = ", ".join(builtin_profile_names())
        raise ProfileError(
            reference, [("(file)", f"neither a built-in profile ({known}) nor an existing file")]
        )
    return load_profile(path)


DEFAULT_PROFILE: Final = "sandbox"
"""What a client without a profile assumes: stetgate's own behaviour (the CLI's default bank)."""


def default_profile() -> BankProfile:
    return builtin_profile(DEFAULT_PROFILE)
