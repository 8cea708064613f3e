"""Prometheus metrics and structured (JSON) logs: what an operator watches.

A foundation package (no import of any other stetgate package), so every layer — the store's
audit trail, the eIDAS identity, the OAuth token endpoint, the resource API, the HTTP bank
client — can count what it decides without an upward import. The metrics listener that
serves the counters, which needs the settings and the CRL folder, lives in
`stetgate.serving.metrics_listener`. docs/operations.md#metrics and #logs list the names.
"""
