"""billing-api: the admin's Billing tab and its JSON API (gunicorn target ``billing_api:create_app()``)."""

from billing_api.app import create_app

__all__ = ["create_app"]
