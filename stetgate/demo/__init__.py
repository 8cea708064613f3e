"""The built-in bank behind the gateway: the demo core banking (accounts, balances,
transactions over the database), the local PSU directory (argon2id passwords, TOTP), the demo
phone that answers decoupled SCA challenges, the demo OpenID Provider standing for a bank's
own identity provider (delegated login: `openid_provider`), and their CLIs. Adapters of the
ports in `stetgate.bank`; nothing below `stetgate.app` imports this package."""
