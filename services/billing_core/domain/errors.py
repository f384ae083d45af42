"""Errors of the billing domain: each says what is wrong with the input, never how to recover."""

from __future__ import annotations


class BillingDomainError(Exception):
    """Base of every error the billing domain raises."""


class InvalidAmount(BillingDomainError, ValueError):
    """A money amount that must not enter the system (a float, NaN, infinite, negative, too precise)."""


class UnsupportedCurrency(BillingDomainError, ValueError):
    """A currency the system cannot bill in (only currencies with two decimal places are supported)."""


class ConfigurationError(BillingDomainError):
    """The billing policy or an account's settings cannot produce a correct invoice; fix, then rerun."""


class CostReportMismatch(BillingDomainError, ValueError):
    """The cost report handed to planning does not describe the period or grouping being billed."""
