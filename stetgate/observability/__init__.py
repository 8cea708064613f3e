"""Prometheus metrics and structured (JSON) logs: what an operator watches.

A foundation package (no import of any other stetgate package), so every layer — the store's
audit trail, the eIDAS identity, the OAuth token endpoint, the resource API, the HTTP bank
client — can count what it decides without an upward import. The request middleware (access
line, latency histogram) is `stetgate.serving.access`, beside the request-id rule it uses; the
metrics listener, which needs the settings and the CRL folder, is
`stetgate.serving.metrics_listener`. docs/operations.md#metrics and #logs list the names.
"""
