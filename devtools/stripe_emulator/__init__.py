"""A stateful, in-memory Stripe API emulator for offline development and tests.

``create_app(config)`` gives the WSGI app, ``EmulatorServer(config)`` serves it on a free local port,
and ``python -m stripe_emulator`` runs it as its own process.
"""

from stripe_emulator.app import EmulatorApp, create_app
from stripe_emulator.config import EmulatorConfig
from stripe_emulator.server import EmulatorServer
from stripe_emulator.webhooks import sign_payload

__all__ = ["EmulatorApp", "EmulatorConfig", "EmulatorServer", "create_app", "sign_payload"]
