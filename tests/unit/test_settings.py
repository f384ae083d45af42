"""Settings: local defaults, required variables per process, clear errors for bad values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from billing_core.domain.costs import PAYER, ChargeCategory, ChargeType, CostAttribution
from billing_core.settings import Settings, SettingsError

README = Path(__file__).resolve().parents[2] / "services" / "billing_core" / "README.md"


def test_empty_environment_gives_the_documented_local_defaults():
    settings = Settings.from_env({})

    assert settings.aws_region == "eu-central-1"
    assert (settings.billing_table, settings.accounts_table, settings.events_table) == (
        "billing",
        "payment-methods",
        "events",
    )
    assert settings.stripe_secret_id == "billing/stripe"
    assert settings.stripe_api_base is None
    assert settings.secrets_refresh_seconds == 10
    assert settings.admin_group == "admin"
    assert settings.log_level == "INFO"
    assert settings.billing_currency == "eur"
    assert settings.billing_jobs_queue_url is None and settings.stripe_events_queue_url is None


def test_values_are_read_from_the_environment_and_normalised():
    settings = Settings.from_env(
        {
            "AWS_REGION": "us-east-1",
            "BILLING_TABLE": "billing-test",
            "BILLING_JOBS_QUEUE_URL": "http://127.0.0.1:4566/000000000000/billing-jobs",
            "STRIPE_API_BASE": "http://127.0.0.1:12111/",
            "SECRETS_REFRESH_SECONDS": "60",
            "LOG_LEVEL": "debug",
            "BILLING_CURRENCY": "EUR",
        }
    )

    assert settings.aws_region == "us-east-1"
    assert settings.billing_table == "billing-test"
    assert settings.billing_jobs_queue_url == "http://127.0.0.1:4566/000000000000/billing-jobs"
    assert settings.stripe_api_base == "http://127.0.0.1:12111"
    assert settings.secrets_refresh_seconds == 60
    assert settings.log_level == "DEBUG"
    assert settings.billing_currency == "eur"


def test_consumers_long_poll_20_seconds_and_write_no_heartbeat_unless_told():
    settings = Settings.from_env({})
    assert (settings.queue_wait_seconds, settings.worker_heartbeat_file) == (20, None)

    told = Settings.from_env({"QUEUE_WAIT_SECONDS": "2", "WORKER_HEARTBEAT_FILE": "/tmp/scheduler-worker.heartbeat"})
    assert (told.queue_wait_seconds, told.worker_heartbeat_file) == (2, "/tmp/scheduler-worker.heartbeat")


def test_region_falls_back_to_aws_default_region():
    assert Settings.from_env({"AWS_DEFAULT_REGION": "eu-west-1"}).aws_region == "eu-west-1"
    assert Settings.from_env({"AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "us-west-2"}).aws_region == "us-west-2"


def test_an_empty_variable_counts_as_unset():
    settings = Settings.from_env({"SECRETS_REFRESH_SECONDS": "", "BILLING_TABLE": "  "})
    assert settings.secrets_refresh_seconds == 10
    assert settings.billing_table == "billing"


def test_cognito_urls_are_derived_from_region_and_pool_unless_overridden():
    derived = Settings.from_env({"AWS_REGION": "eu-central-1", "COGNITO_USER_POOL_ID": "eu-central-1_abc"})
    overridden = Settings.from_env(
        {
            "COGNITO_USER_POOL_ID": "eu-central-1_abc",
            "COGNITO_JWKS_URL": "http://127.0.0.1:4566/eu-central-1_abc/.well-known/jwks.json",
            "COGNITO_ISSUER": "http://127.0.0.1:4566/eu-central-1_abc",
        }
    )

    assert derived.cognito_issuer == "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_abc"
    assert derived.cognito_jwks_url == derived.cognito_issuer + "/.well-known/jwks.json"
    assert overridden.cognito_jwks_url == "http://127.0.0.1:4566/eu-central-1_abc/.well-known/jwks.json"
    assert overridden.cognito_issuer == "http://127.0.0.1:4566/eu-central-1_abc"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SECRETS_REFRESH_SECONDS", "five"),
        ("SECRETS_REFRESH_SECONDS", "0"),
        ("STRIPE_MAX_NETWORK_RETRIES", "-1"),
        ("LOG_LEVEL", "LOUD"),
        ("BILLING_CURRENCY", "euro"),
        ("AWS_REGION", "Frankfurt"),
        ("STRIPE_API_BASE", "127.0.0.1:12111"),
        ("BILLING_JOBS_QUEUE_URL", "billing-jobs"),
        ("BILLING_TABLE", "billing table"),
        ("QUEUE_WAIT_SECONDS", "0"),
        ("QUEUE_WAIT_SECONDS", "21"),
        ("WORKER_HEARTBEAT_FILE", "tmp/scheduler-worker.heartbeat"),
    ],
)
def test_an_invalid_value_is_a_settings_error_naming_the_variable(variable, value):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})


def test_every_invalid_variable_is_reported_at_once_without_echoing_values():
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"SECRETS_REFRESH_SECONDS": "sk_live_notanumber", "LOG_LEVEL": "whsec_oops"})

    message = str(error.value)
    assert "SECRETS_REFRESH_SECONDS" in message and "LOG_LEVEL" in message
    assert "sk_live_notanumber" not in message and "whsec_oops" not in message


def test_a_required_variable_that_is_missing_is_a_startup_error_naming_it():
    with pytest.raises(SettingsError, match="BILLING_JOBS_QUEUE_URL, STRIPE_EVENTS_QUEUE_URL"):
        Settings.from_env({}, require=("billing_jobs_queue_url", "stripe_events_queue_url"))


def test_require_names_the_process_and_passes_when_set():
    settings = Settings.from_env({"STRIPE_EVENTS_QUEUE_URL": "http://127.0.0.1:1/q"})

    assert settings.require("stripe_events_queue_url") is settings
    with pytest.raises(SettingsError, match="billing-api.*COGNITO_USER_POOL_ID"):
        settings.require("cognito_user_pool_id", process="billing-api")


def test_summary_lists_every_variable_by_name():
    summary = Settings.from_env({"BILLING_TABLE": "t"}).summary()

    assert summary["BILLING_TABLE"] == "t"
    assert set(summary) == {variable for variable, _, _ in Settings.documentation()}


def test_the_readme_table_documents_every_variable_with_its_default():
    rows = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"`[A-Z_]+`", cells[0]):
            rows[cells[0].strip("`")] = cells[1].strip("`")

    documented = {variable: default for variable, default, _ in Settings.documentation()}
    assert rows == documented


def test_the_cost_settings_keep_cost_explorers_names_and_give_the_domains_types():
    assert Settings.from_env({}).cost_group_by == PAYER
    assert Settings.from_env({"COST_GROUP_BY": "LINKED_ACCOUNT"}).cost_group_by == CostAttribution.by_account()
    assert Settings.from_env({"COST_GROUP_BY": "TAG:customer"}).cost_group_by == CostAttribution.by_tag("customer")
    assert Settings.from_env({}).excluded_record_types == (ChargeType(ChargeCategory.TAX, "Tax"),)
    assert Settings.from_env({"EXCLUDED_RECORD_TYPES": "Tax, Support"}).excluded_record_types == (
        ChargeType(ChargeCategory.TAX, "Tax"),
        ChargeType(ChargeCategory.SUPPORT, "Support"),
    )
    assert Settings.from_env({"EXCLUDED_RECORD_TYPES": "none"}).excluded_record_types == ()
    summary = Settings.from_env({"COST_GROUP_BY": "TAG:customer", "EXCLUDED_RECORD_TYPES": "Tax,RIFee"}).summary()
    assert (summary["COST_GROUP_BY"], summary["EXCLUDED_RECORD_TYPES"]) == ("TAG:customer", ("Tax", "RIFee"))
    for value in ("REGION", "TAG:", "linked_account"):
        with pytest.raises(SettingsError, match="COST_GROUP_BY"):
            Settings.from_env({"COST_GROUP_BY": value})
