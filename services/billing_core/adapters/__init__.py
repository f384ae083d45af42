"""Adapters: the ports implemented over boto3 clients and the Stripe SDK, each taking its client."""
