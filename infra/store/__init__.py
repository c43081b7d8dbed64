"""Storage: database engines and security tables, the event store, its hash chain, the record index, stored command answers (idempotency), and the shadow rows a command answer falls back on."""
