"""Reads that tolerate lag, served by a streaming replica (the `replica` database alias) when it may
serve them, else by the primary (docs/data.md, "Read replica").

A read goes to the replica only where a selector asks for it by name, through `reads.lag_tolerant` (the
`*_lag_tolerant` selectors, the admins' change lists: shared.admin_ui.changelists). Writes, every
read-modify-write, Celery tasks, event handlers, the outbox and the inbox use the primary (the default
alias), and so does a lag-tolerant read outside a web request (a task) or inside a write's transaction.

Within a request, the replica serves lag-tolerant reads unless (`reads.decide`):
- there is none (DATABASE_REPLICA_URL unset; the alias is then the primary): the default alias is used;
- it is unavailable: down (a short connect timeout), or failing the probe this request runs on its
  connection;
- it lags more than REPLICA_MAX_LAG_SECONDS (`health`: sampled at most once per REPLICA_CHECK_SECONDS in
  each process);
- the reader wrote moments ago and the replica has not replayed that write yet (`pins`: after a user's
  non-safe request that succeeded, the primary's WAL position is kept in Redis for that user and service;
  a catalog write pins every reader of the product pages, which are cached for everyone);
- Redis cannot say (down or hung, shared.redis_gate): in doubt, the primary.

One decision per request (its lag-tolerant reads all see one database), counted in
`lag_tolerant_reads_total{database, reason}` and, with REPLICA_READ_HEADER on, named in the response's
`X-Read-From` header (`middleware`). `metrics` exports the replica's lag at scrape time.
"""
