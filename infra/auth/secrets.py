"""Encryption at rest for broker secrets (Kite api_secret, request tokens, access tokens).

`SecretBox` is a MultiFernet (AES-128-CBC + HMAC-SHA256) over keys derived from TRADERTAPE_SECRET_KEYS:
the first key encrypts, every listed key decrypts. Rotation: put a new key first in the list, restart,
run `tradertape secrets rotate` (re-encrypts every row with the first key), then drop the old key.
Ciphertexts live in the plain `broker_secrets` table, never in events, so a database dump holds no
plaintext and rotation never has to rewrite history.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from infra.store.db import Database, epoch

metadata = sa.MetaData()
broker_secrets = sa.Table(
    "broker_secrets", metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),  # kite_api_secret | kite_request_token | kite_access_token
    sa.Column("ciphertext", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float),
)


def _fernet_key(secret: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(("broker-secrets:" + secret).encode()).digest())


class SecretBox:
    def __init__(self, secret_keys: list[str]) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        self._fernet = MultiFernet([Fernet(_fernet_key(k)) for k in secret_keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise RuntimeError("a stored broker secret cannot be decrypted with the configured secret keys "
                               "(was a key removed before `tradertape secrets rotate` ran?)") from None

    def rotate(self, ciphertext: str) -> str:
        return self._fernet.rotate(ciphertext.encode()).decode()


def _dt(v: float | None) -> datetime | None:
    return None if v is None else datetime.fromtimestamp(v, UTC)


class SqlBrokerSecrets:
    """The `BrokerSecrets` port over the `broker_secrets` table."""

    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    def create_table(self) -> None:
        with self.db.write() as conn:
            metadata.create_all(conn)

    def put(self, account_id: int, kind: str, value: str, now: datetime, expires_at: datetime | None = None) -> None:
        t = broker_secrets.c
        values = {"ciphertext": self.box.encrypt(value), "created_at": epoch(now),
                  "expires_at": None if expires_at is None else epoch(expires_at)}
        with self.db.write() as conn:
            done = conn.execute(sa.update(broker_secrets).where(t.account_id == account_id, t.kind == kind)
                                .values(**values)).rowcount
            if not done:
                conn.execute(sa.insert(broker_secrets).values(account_id=account_id, kind=kind, **values))

    def _row(self, account_id: int, kind: str) -> Any:
        t = broker_secrets.c
        with self.db.read() as conn:
            return conn.execute(sa.select(t.ciphertext, t.expires_at)
                                .where(t.account_id == account_id, t.kind == kind)).first()

    def get(self, account_id: int, kind: str, now: datetime) -> str | None:
        row = self._row(account_id, kind)
        if row is None or (row.expires_at is not None and row.expires_at <= epoch(now)):
            return None
        return self.box.decrypt(row.ciphertext)

    def take(self, account_id: int, kind: str, now: datetime) -> str | None:
        t = broker_secrets.c
        with self.db.write() as conn:
            row = conn.execute(sa.select(t.ciphertext, t.expires_at)
                               .where(t.account_id == account_id, t.kind == kind)).first()
            if row is None:
                return None
            gone = conn.execute(sa.delete(broker_secrets).where(
                t.account_id == account_id, t.kind == kind, t.ciphertext == row.ciphertext)).rowcount
        if not gone or (row.expires_at is not None and row.expires_at <= epoch(now)):
            return None
        return self.box.decrypt(row.ciphertext)

    def delete(self, account_id: int, kind: str) -> None:
        t = broker_secrets.c
        with self.db.write() as conn:
            conn.execute(sa.delete(broker_secrets).where(t.account_id == account_id, t.kind == kind))

    def expires_at(self, account_id: int, kind: str) -> datetime | None:
        row = self._row(account_id, kind)
        return None if row is None else _dt(row.expires_at)

    def rotate_all(self) -> int:
        """Re-encrypt every stored secret with the first key; returns how many rows were rewritten."""
        t = broker_secrets.c
        n = 0
        with self.db.write() as conn:
            rows = conn.execute(sa.select(t.account_id, t.kind, t.ciphertext)).all()
            for r in rows:
                new = self.box.rotate(r.ciphertext)
                conn.execute(sa.update(broker_secrets).where(t.account_id == r.account_id, t.kind == r.kind)
                             .values(ciphertext=new))
                n += 1
        return n
