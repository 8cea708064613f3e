"""Decoupled SCA over HTTP: the contract between stetgate and the bank's SCA service.

stetgate POSTs a challenge (who, which TPP, what access, the reference the PSU sees, expiry),
the bank's service asks the PSU on its enrolled device and answers by a signed callback or by
being polled (docs/bank-integration-sca.md, ``openapi.json`` here). This package is an adapter:
`HttpAppMethod` implements the `stetgate.bank.sca` port, `callback` is the route the service
answers on, `demo_service` is the sandbox's implementation of the bank's side. The PSU pages
never import it; `stetgate.app` wires it in when ``sca_http_url`` is set.
"""
