"""The release version: the package, the OpenAPI document (`info.version`) and `/api/health` show it.

Bump it when a release is cut and move CHANGELOG.md's Unreleased entries under it
(tests/docs/test_changelog.py checks they agree)."""

VERSION = "0.1.0"
