"""The doctor's checks, one function per rule, grouped by area: `endpoints` (discovery and the
OAuth endpoints without a PSU), `authorization` (the PSU journey, callback, code), `resources`
(the AISP/CBPII API), `tokens` (refresh and revocation). Each takes the run's
`DoctorContext` and returns one `CheckResult`; `stetgate.tpp.doctor.runner` orders them."""
