"""The emulator's in-memory state: Stripe objects, their state machines, payments and events.

``Store`` is composed of one class per resource (customers and their balances, payment methods, setup
intents, tax rates, invoice items, invoices, payments, credit notes, events and webhook endpoints), each
in its own module and each built on ``StoreCore``: one state, one re-entrant lock, so every API call
stays atomic across resources.
"""

from stripe_emulator.store.core import BACKGROUND, RequestContext
from stripe_emulator.store.credit_notes import CreditNotes
from stripe_emulator.store.customers import Customers
from stripe_emulator.store.events import Events
from stripe_emulator.store.setup_intents import SetupIntents

__all__ = ["BACKGROUND", "RequestContext", "Store"]


class Store(Customers, SetupIntents, CreditNotes, Events):
    """All Stripe objects of one emulator, with Stripe's rules for changing them."""
