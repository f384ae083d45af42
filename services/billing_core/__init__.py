"""billing_core."""
