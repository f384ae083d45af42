"""The local stack: moto server, the Stripe emulator and the three services as processes."""
