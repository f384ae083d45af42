"""webhook-receiver: takes Stripe's webhooks (gunicorn target ``webhook_receiver:create_app()``)."""

from webhook_receiver.app import create_app

__all__ = ["create_app"]
