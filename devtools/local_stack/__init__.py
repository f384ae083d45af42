"""The local stack: moto server, the Stripe emulator and the three services as processes.

``python -m local_stack`` (``make dev``) and the tests' ``stack`` fixture both go through
``start_stack()``.
"""

from local_stack.errors import PortInUse, ProcessFailed, StackError
from local_stack.provision import UserLogin
from local_stack.stack import Stack, StackPorts, start_stack

__all__ = ["PortInUse", "ProcessFailed", "Stack", "StackError", "StackPorts", "UserLogin", "start_stack"]
