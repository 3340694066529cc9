"""Settings: decoded from TIMEBANK_* variables, failing fast with the variable's name, secrets hidden."""

from __future__ import annotations

import pytest

from timebank.config import SettingsError, default_data_dir, load_settings


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.port == 8000
    assert settings.page_size_max == 500
    assert settings.database_url is None
    assert settings.data_dir == default_data_dir()


def test_values_come_from_prefixed_variables() -> None:
    settings = load_settings(
        {"TIMEBANK_PORT": "9000", "TIMEBANK_MIGRATE_ON_START": "false", "TIMEBANK_STATEMENT_TIMEOUT_MS": "250"}
    )
    assert settings.port == 9000
    assert settings.migrate_on_start is False
    assert settings.statement_timeout_ms == 250


def test_unrelated_variables_are_ignored() -> None:
    assert load_settings({"TIMEBANK_TEST_DATABASE_URL": "x", "PORT": "1"}).port == 8000


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TIMEBANK_PORT", "eighty"),
        ("TIMEBANK_PORT", "70000"),
        ("TIMEBANK_POOL_MAX_SIZE", "0"),
        ("TIMEBANK_LOG_FORMAT", "xml"),
        ("TIMEBANK_DB_APP_ROLE", "Robert'); drop table students;--"),
    ],
)
def test_invalid_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings({variable: value})


def test_secrets_stay_out_of_repr() -> None:
    settings = load_settings(
        {
            "TIMEBANK_DATABASE_URL": "postgresql://u:hunter2@db/x",
            "TIMEBANK_ADMIN_TOKEN": "tb_secret_token",
            "TIMEBANK_DB_APP_PASSWORD": "pw-secret",
        }
    )
    shown = repr(settings) + str(settings)
    for secret in ("hunter2", "tb_secret_token", "pw-secret"):
        assert secret not in shown
    assert settings.admin_token == "tb_secret_token"
