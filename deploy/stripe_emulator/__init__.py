"""A stateful, in-memory Stripe API emulator for offline development and tests."""
