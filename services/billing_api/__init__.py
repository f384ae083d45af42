"""billing_api."""
