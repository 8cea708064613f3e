"""``GET /.well-known/oauth-authorization-server``: authorization server metadata (RFC 8414).

What a TPP (or a conformance tool) needs to talk to this bank without reading its manual: the
endpoints of docs/decisions.md#urls; mutual-TLS client authentication everywhere
(``tls_client_auth``, RFC 8705 §2.1.1) and certificate-bound access tokens
(``tls_client_certificate_bound_access_tokens``, RFC 8705 §3.3); the scopes the bank grants;
``code`` as the only response type (STET v1.4.2 Part I §3.4); PKCE S256 only
(docs/decisions.md#pkce); ``iss`` on every authorization response (RFC 9207 §3).
``grant_types_supported`` lists the grant handlers actually registered at the token endpoint, so
it cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stetgate.oauth.introspect import INTROSPECT_PATH
from stetgate.oauth.pkce import S256
from stetgate.oauth.revoke import REVOKE_PATH
from stetgate.oauth.scopes import AISP, CBPII, EXTENDED_HISTORY, MANAGE_REGISTRATION
from stetgate.oauth.token_endpoint import TOKEN_PATH
from stetgate.services import services_of
from stetgate.settings import Settings

METADATA_PATH = "/.well-known/oauth-authorization-server"
AUTHORIZE_PATH = "/stet/psd2/oauth/authorize"
REGISTRATION_PATH = "/stet/setting/v1/register"
TLS_CLIENT_AUTH = "tls_client_auth"
CLIENT_CREDENTIALS = "client_credentials"


def authorization_server_metadata(
    issuer: str, settings: Settings, grant_types: Iterable[str]
) -> dict[str, Any]:
    """The RFC 8414 §2 document for this instance."""
    grant_types = sorted(grant_types)
    scopes = [AISP, CBPII]
    if settings.allow_extended_history:
        scopes.append(EXTENDED_HISTORY)
    if CLIENT_CREDENTIALS in grant_types:
        scopes.append(MANAGE_REGISTRATION)
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + AUTHORIZE_PATH,
        "token_endpoint": issuer + TOKEN_PATH,
        "revocation_endpoint": issuer + REVOKE_PATH,
        "introspection_endpoint": issuer + INTROSPECT_PATH,
        "registration_endpoint": issuer + REGISTRATION_PATH,
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grant_types,
        "token_endpoint_auth_methods_supported": [TLS_CLIENT_AUTH],
        "revocation_endpoint_auth_methods_supported": [TLS_CLIENT_AUTH],
        "introspection_endpoint_auth_methods_supported": [TLS_CLIENT_AUTH],
        "code_challenge_methods_supported": [S256],
        "tls_client_certificate_bound_access_tokens": True,
        "authorization_response_iss_parameter_supported": True,
    }


def metadata_route(grant_types: Iterable[str]) -> Route:
    names = tuple(grant_types)

    async def metadata(request: Request) -> JSONResponse:
        services = services_of(request)
        body = authorization_server_metadata(services.issuer, services.settings, names)
        return JSONResponse(body, headers={"Cache-Control": "max-age=300"})

    return Route(METADATA_PATH, metadata, methods=["GET"])


__all__ = [
    "AUTHORIZE_PATH",
    "METADATA_PATH",
    "REGISTRATION_PATH",
    "authorization_server_metadata",
    "metadata_route",
]
