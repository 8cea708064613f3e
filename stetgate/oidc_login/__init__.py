"""The bank's own PSU authentication, delegated over OpenID Connect (an adapter).

When ``oidc_issuer`` is set, the identification and SCA screens of a journey are replaced by
a redirect to the bank's OpenID Provider (authorization code flow with PKCE, OIDC Core §3.1;
RFC 7636), and the callback continues the journey to the consent page as a completed SCA
would. The parts, each small:

- `stetgate.oidc_login.provider`: discovery, the OP's JWKS with key rotation, the token call;
- `stetgate.oidc_login.id_token`: ID token validation (OIDC Core §3.1.3.7), ``acr`` as SCA;
- `stetgate.oidc_login.logins`: the ``oidc_logins`` rows binding state, nonce and PKCE
  verifier to a journey;
- `stetgate.oidc_login.pages`: the start and callback routes.

It sits in the adapters layer (next to `stetgate.demo`): it uses the PSU pages' journey rules
(`stetgate.psu.visits`) and is wired by `stetgate.app` only when configured.
"""
