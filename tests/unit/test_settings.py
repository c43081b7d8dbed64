"""Settings: secret keys in development vs production."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from infra.config.settings import Settings


def test_development_generates_a_private_secret_key_file_once(tmp_path: Path) -> None:
    s = Settings(env="development", var_dir=tmp_path, secret_keys="")
    key = s.secret_key_list[0]
    path = tmp_path / "secret.key"
    assert len(key) >= 32 and path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings(env="development", var_dir=tmp_path, secret_keys="").secret_key_list == [key]


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="TRADERTAPE_SECRET_KEYS"):
        Settings(env="production", var_dir=tmp_path, secret_keys="").check()
    assert not (tmp_path / "secret.key").exists()


def test_placeholder_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="placeholder"):
        Settings(env="production", var_dir=tmp_path, secret_keys="change-me").check()


def test_rotation_keeps_older_keys_after_the_current_one(tmp_path: Path) -> None:
    s = Settings(env="production", var_dir=tmp_path, secret_keys="a" * 40 + "," + "b" * 40)
    assert s.secret_key_list == ["a" * 40, "b" * 40]


def test_emailed_links_follow_the_listening_address_unless_base_url_is_set(tmp_path: Path) -> None:
    assert Settings(var_dir=tmp_path, port=8731, base_url="").public_base_url == "http://127.0.0.1:8731"
    assert Settings(var_dir=tmp_path, host="0.0.0.0", port=9000, base_url="").public_base_url == "http://127.0.0.1:9000"
    assert Settings(var_dir=tmp_path, host="::1", port=9000, base_url="").public_base_url == "http://[::1]:9000"
    pinned = Settings(var_dir=tmp_path, port=8731, base_url="https://trade.example.com/")
    assert pinned.public_base_url == "https://trade.example.com"
