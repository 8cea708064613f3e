"""The token side of the authorization server, composed for `create_app`.

`grant_handlers` builds the token endpoint's ``grant_type`` → handler map; `create_app` may add
to it (the register API adds ``client_credentials``) before passing it to `routes`, which
returns the token, revocation, introspection and metadata routes.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.routing import Route

from stetgate.oauth import authorization_code, refresh
from stetgate.oauth.introspect import introspect_route
from stetgate.oauth.metadata import metadata_route
from stetgate.oauth.revoke import revoke_route
from stetgate.oauth.token_endpoint import GrantHandler, token_route
from stetgate.services import Services


def grant_handlers(services: Services) -> dict[str, GrantHandler]:
    """``authorization_code`` (RFC 6749 §4.1.3) and ``refresh_token`` (§6)."""
    return {
        authorization_code.GRANT_TYPE: authorization_code.AuthorizationCodeGrant(),
        refresh.GRANT_TYPE: refresh.RefreshTokenGrant(services),
    }


def routes(handlers: Mapping[str, GrantHandler]) -> list[Route]:
    return [
        token_route(handlers),
        revoke_route(),
        introspect_route(),
        metadata_route(handlers.keys()),
    ]


__all__ = ["grant_handlers", "routes"]
