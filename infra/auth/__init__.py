"""Authentication and secrets: argon2id passwords, keyed token hashes, the SQL security store, and broker
secrets encrypted at rest."""
