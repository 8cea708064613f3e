"""Keeping tokens alive for many PSUs: what an aggregator runs beside `stetgate.tpp.client`.

- `records`: what is kept per PSU (tokens, the time of the last SCA, why it ended);
- `sealing`: AES-256-GCM at rest, bound to the store key, with rotating key ids;
- `store`: the `TokenStore` and `RefreshLock` ports and `EncryptedTokens` over them;
  `file_store`, `postgres_store`, `redis_store` implement both ports (`store_url` picks one);
- `bank_access`: the narrow client protocol the lifecycle needs, and `ThreadedClient`, which
  runs the synchronous `StetBankClient` off the event loop;
- `single_flight`: one refresh per PSU and expiry across tasks and processes;
- `errors`: `ReauthenticationRequired` and the store errors;
- `limits`, `ledger` (`postgres_ledger`, `redis_ledger`), `scheduler`: unattended calls
  within each bank's "4 a day" per account;
- `report`: days left before each PSU must authenticate again; `cli`: ``stetgate tpp tokens``.

docs/tpp-guide.md#keeping-tokens-alive-for-many-psus shows them wired together.
"""
