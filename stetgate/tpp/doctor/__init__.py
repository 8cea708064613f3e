"""`stetgate tpp doctor`: a STET v1.4.2 conformance check of any bank, run by a TPP with its own
certificates.

The doctor walks the cinematic a TPP depends on — discovery, the mTLS token endpoint, the PSU
journey and its callback, code redemption, refresh, revocation, every AISP/CBPII endpoint with
signed requests — and judges each answer against the rule it comes from (`model.CheckResult`:
pass / fail / differs / info / skipped, with the STET or RFC section). What STET leaves to each
bank (refresh-token rotation, the unattended limit, discovery) is an expectation
(`DoctorExpectations`), and where STET is silent a different answer is "differs", not "fail".

Modules: `model` (results), `expectations`, `stet_schemas` (the STET 1.4.2 resource schemas),
`recording` (every exchange's status and ``X-Request-ID``, never a token), `journeys` (the PSU:
a robot on stetgate's pages or a human with the local callback catcher), `context` (one run's
state), `checks/` (one function per rule, grouped by area), `runner`, `reports` (JSON, HTML).
"""
