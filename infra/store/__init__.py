"""Storage: database engines and security tables, the event store and its hash chain, the record index, stored
command answers (idempotency), and the rows a command's answer falls back on while projections lag (shadow)."""
