"""Whole "get your token" cinematics per second (product target: ≥ 50/s on the 2-core reference box
once PSU authentication is delegated; with the local argon2id check, the figure and its CPU
split), end to end through a real ``stetgate serve`` process.

One cinematic is what a TPP and its PSU do for one consent (STET v1.4.2 Part I §3.4.3; steps 2-7
of docs/decisions.md#the-cinematic): ``GET /stet/psd2/oauth/authorize`` → PSU identification
(``psu_id`` + ``password``, argon2id check) → SCA method → TOTP (``otp``, RFC 6238, replay
refused) → consent (``decision=authorize``) → redirect to the TPP callback with the code →
``POST /stet/psd2/oauth/token`` (``authorization_code``) over mutual TLS with the TPP's QWAC. It
is driven by the shipped TPP library: `stetgate.tpp.client.StetBankClient` (one keep-alive mTLS
client per load thread, like a TPP back end) and `stetgate.tpp.psu_robot.PsuRobot` walking the
PSU pages in a fresh browser (new ``httpx.Client``: new TLS session, no cookies) per cinematic.
Nothing is weakened for the benchmark: default settings, OWASP argon2id parameters.

``--login oidc`` (scenario ``cinematic_oidc``): the PSU's identification and SCA are delegated
to the bank's OpenID Provider (docs/operations.md#delegated-psu-login-openid-connect) — here
the node ``oidc-provider`` shipped as the demo OP (`stetgate.demo.openid_provider`, installed
with ``npm ci`` into ``var/oidc-op``), started on its own port of the same box. The journey is
then ``/authorize`` → ``/psu/login`` → the OP's authorization endpoint → its login page → login
post (the ``acr`` it asserts) → back to ``/psu/oidc/callback`` (stetgate redeems the code with
PKCE at the OP and checks the RS256 ID token) → consent → TPP callback → code exchange. The
OP's CPU is reported apart (``op``): it is the bank's identity provider, not stetgate, and on
a bank's premises it has cores of its own.

Set-up (`scenarios.prepare_cinematic`): test QTSP, TPP certificates, migrated database, the
TPP as a Go-Live client and ``--psus`` PSUs with one shared argon2id hash and a TOTP secret
each; each load thread owns a share of the PSUs and uses each at most once per 30 s TOTP step
(``psu_waits`` in the notes: raise ``--psus`` if it is not 0). ``--connections`` is the
number of load threads, spread over ``--cinematic-processes`` processes.

    .venv/bin/python benchmarks/cinematics.py
        [--database sqlite|postgresql|postgresql-proxy|both|all]
        [--workers 2] [--connections 16] [--cinematic-processes 2] [--seconds 10] [--warmup 2]
        [--psus 3000] [--login local|oidc]

Prints cinematics per second (completed inside the measuring window), latency percentiles of a
whole cinematic, failures, CPU per cinematic of the server, the load generator and PostgreSQL,
how busy the box was, the RSS of each server process, and the CPU time of one argon2id verify
measured in this process (set it against the server CPU per cinematic: the share the password
check accounts for, and the ceiling it alone puts on the box).
"""

from scenarios import single_scenario_main

if __name__ == "__main__":
    single_scenario_main(
        "cinematic",
        __doc__,
        variants=("login", {"local": "cinematic", "oidc": "cinematic_oidc"}),
        database="sqlite",
        connections=16,
        psus=3000,
        cinematic_processes=2,
    )
