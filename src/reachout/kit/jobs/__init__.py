"""The one durable-work kit: rows a worker claims under a lease, acts on once, and retries with backoff.

- `retry.RetryStrategy` (pure): when to try again — exponential with jitter, a cap, a maximum of attempts,
  and the other side's `Retry-After` honoured.
- `leases.Lease` and `repository` (SQL over any table with the lease columns): claim due rows (`FOR UPDATE
  SKIP LOCKED` on PostgreSQL; SQLite has one writer), check a lease before writing a result, release.
- `runner.Runner`: a kind of work the worker runs in its own loop, with its own batch size and concurrency.
"""
