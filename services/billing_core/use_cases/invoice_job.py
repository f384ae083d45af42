"""The invoice job: one account's invoice for one period, from a claimed record to a finalized Stripe invoice.

Steps, each resumable (the ``billing`` record stores progress after every one):

    claim           conditional put of the record (status pending, amounts from the plan)
    credit-notes    under Stripe Tax: the credit notes settling its downward corrections, on the corrected
                    months' invoices (``use_cases.true_up_credits``), before this invoice is finalized
    customer        the account's Stripe customer (created once if the account has none)
    create-invoice  Stripe draft with metadata userId / invoiceId / period -> record.stripeInvoiceId
    add-lines       both lines in one add_lines request; its answer's total -> record.linesAdded,
                    record.stripeTotal, status draft
    finalize        Stripe finalizes; it charges the default payment method -> status open, number, URLs
    einvoice        the XRechnung and the ZUGFeRD PDF of the finalized invoice, each stored once
                    -> record.einvoiceXml / einvoicePdf
    mail            its e-mail to the account's invoice recipients, queued once (``document_mail``)

Three Stripe requests per invoice (create, add lines, finalize) when the account already has its
customer: the total to check before finalizing comes from the add_lines answer, not from a read.

The draft is created with ``auto_advance`` off and finalized with it on. Stripe finalizes and charges
an auto-advancing draft about an hour after its creation, so a job that stopped before its lines
were in would otherwise be charged for part of the invoice. As a backstop, the job refuses to
finalize a draft whose total is not the record's amount, and stops if the draft stopped being one
before its lines were added.

Every Stripe write carries the idempotency key ``<invoiceId>:<step>``. A crash between "Stripe did it"
and "the record says so" is resumed by sending the same request with the same key, which Stripe
answers with the first result:

    worker A: create draft (key inv_2024-11_u1:create-invoice) -> in_1 ... crashes before saving
    worker B: record has no stripeInvoiceId -> create draft, same key -> Stripe replays in_1
    worker B: saves in_1, adds the lines, finalizes: one invoice

Two situations make a key unusable, and then the job asks Stripe what exists before each step (the
customer's invoices matched by ``metadata.invoiceId``, the draft's lines by ``metadata.line``, the
invoice's status before finalizing) instead of trusting a replay:

- the record is older than Stripe's 24-hour key window, so a key may have expired;
- Stripe answered a step with a 500 after it began executing, or refused to finalize: it keeps
  answering that key with the same failure. The record's ``keyGeneration`` goes up by one and the
  job's retry uses keys ``<invoiceId>:<step>:<generation>``.

Once claimed, the record's amounts are the invoice: a rerun after the costs changed bills what was
claimed first, so two attempts can never disagree about the lines of one invoice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing_core.domain.corrections import with_credit_notes_for_downward_corrections
from billing_core.domain.customer_balance import BalanceUse, balance_applied
from billing_core.domain.einvoice import VatCategory
from billing_core.domain.invoice_plan import InvoicePlan
from billing_core.domain.lifecycle import InvoiceStatus, allowed_predecessors
from billing_core.domain.money import to_minor_units
from billing_core.domain.records import LINE_KINDS, Account, Invoice, InvoiceChanges
from billing_core.domain.seller import Seller, seller_fields
from billing_core.domain.tax import TaxMode, TaxPolicy
from billing_core.errors import (
    BillingError,
    ConditionFailed,
    StripeFailedAfterExecution,
    StripeObjectNotFound,
    StripeRequestRejected,
)
from billing_core.ports import (
    AccountRepository,
    FieldIs,
    InvoiceLine,
    InvoiceRepository,
    PaymentGateway,
    StripeInvoice,
)
from billing_core.use_cases.credit_notes import CreditNotes
from billing_core.use_cases.einvoices import EInvoices
from billing_core.use_cases.invoice_records import (
    TaxClaim,
    invoice_lines,
    invoice_metadata,
    mark_corrected,
    new_record,
)
from billing_core.use_cases.tax_rates import TaxRates
from billing_core.use_cases.true_up_credits import TrueUpCredits

log = logging.getLogger(__name__)

STEPS = ("claim", "customer", "create-invoice", "add-lines", "finalize")  # then "einvoice" (no Stripe call)

# Stripe forgets idempotency keys after 24 hours; an hour of margin covers clock skew and slow steps.
IDEMPOTENCY_WINDOW_SECONDS = 23 * 3600
# A step normally follows the last in milliseconds. A job that took longer than this since it last read
# or wrote its record (frozen, or past its message's visibility) reads it again before its next step:
# another worker may have taken the job over and finished it meanwhile.
STALE_RECORD_SECONDS = 10

StepObserver = Callable[[str, str], None]
"""Called as ``observe(step, phase)``: phase ``"stripe"`` right after the Stripe call (before the
record is saved) and ``"saved"`` after the record holds the step. Production passes none; tests pass
one that raises to simulate a crash at that exact point."""


class AccountNotFound(BillingError):
    """The job's account has no item in the accounts table (deleted after the run planned it)."""


class InvoiceNoLongerDraft(BillingError):
    """The Stripe invoice left the draft state (finalized, voided) before all its lines were added."""


class InvoiceTotalMismatch(BillingError):
    """The Stripe invoice's total is not the record's amount; it is not finalized (or recorded) as is."""


class CustomerBalanceMismatch(BillingError):
    """Stripe's customer balance is not what the books explain; finalizing would collect an unexplained amount."""


class NegativeLineUnderStripeTax(BillingError):
    """The invoice would carry a negative line (a credit carried in), which Stripe Tax refuses."""


class InvoiceFinalizationFailed(BillingError):
    """Stripe refused to finalize the draft (``invoice.finalization_failed``); the job retries it."""


@dataclass(frozen=True)
class InvoiceJobResult:
    """Where one account's invoice stands after the job ran."""

    account_id: str
    invoice_id: str
    status: str
    stripe_invoice_id: str | None
    total: Decimal
    currency: str
    payment_method_missing: bool
    already_done: bool  # the record was complete before this run: nothing was sent to Stripe


def _no_observer(step: str, phase: str) -> None:
    return None


class InvoiceJob:
    """Creates (or resumes) one account's Stripe invoice for a period; safe to run any number of times."""

    def __init__(
        self,
        *,
        invoices: InvoiceRepository,
        accounts: AccountRepository,
        payments: PaymentGateway,
        clock: Callable[[], float] = time.time,
        observe: StepObserver | None = None,
        idempotency_window_seconds: int = IDEMPOTENCY_WINDOW_SECONDS,
        seller: Seller | None = None,
        tax: TaxPolicy | None = None,
        language: str = "de",
        einvoices: EInvoices | None = None,
        books_balance: Callable[[Invoice], Decimal] | None = None,
        credit_notes: CreditNotes | None = None,
        mail: Callable[[str], object] | None = None,
    ) -> None:
        self._einvoices = einvoices
        self._mail = mail  # queues the e-mail of an invoice with its files (once: ``DocumentMailer.request``)
        # The customer's balance as the books explain it before ``record`` (``domain.customer_balance``);
        # ``None``: not checked.
        self._books_balance = books_balance
        # Under Stripe Tax a downward correction is a credit note on the corrected invoice, not a line.
        self._true_up_credits = TrueUpCredits(invoices, credit_notes) if credit_notes is not None else None
        self._seller_fields = seller_fields(seller)
        self._tax = tax
        self._language = language
        self._tax_rates = TaxRates(payments, tax.rate) if tax is not None else None
        self._invoices = invoices
        self._accounts = accounts
        self._payments = payments
        self._clock = clock
        self._observe = observe or _no_observer
        self._window_ms = idempotency_window_seconds * 1000

    def run(self, plan: InvoicePlan, *, run_id: str | None = None) -> InvoiceJobResult:
        """Take the invoice of ``plan`` as far as it goes: finalized in Stripe, progress on the record."""
        account = self._accounts.get(plan.account_id)
        record = self._claim(plan, run_id, account)
        mark_corrected(self._invoices, record)
        if record.stripe.finalized_at:
            if account is not None:
                self._mail_invoice(self._einvoice(record, account))
            return _result(record, already_done=True)
        if account is None:
            raise AccountNotFound(f"account {plan.account_id} has no item in the accounts table")
        seen_at = self._clock()

        def current(record: Invoice) -> Invoice:
            """The record as stored, if this copy may be stale: the job was frozen, or waited long."""
            nonlocal seen_at
            if self._clock() - seen_at > STALE_RECORD_SECONDS:
                record = self._invoices.get(record.account_id, record.invoice_id) or record
            seen_at = self._clock()
            return record

        try:
            record = self._settle_corrections(current(record))
            record = self._customer(current(record), account)
            record = self._draft(current(record))
            record, answer = self._lines(current(record))
            record = current(record)
            finalized_elsewhere = record.stripe.finalized_at is not None
            record = self._finalize(record, account, answer)
            record = self._einvoice(record, account)
            self._mail_invoice(record)
        except StripeFailedAfterExecution:
            # Stripe replays this 500 for the key: the retry looks at what exists and uses fresh keys.
            self._next_key_generation(record)
            raise
        log.info(
            "invoice finalized by another attempt while this one was away"
            if finalized_elsewhere
            else "invoice finalized",
            extra={
                "invoiceId": record.invoice_id,
                "stripeInvoiceId": record.stripe.invoice_id,
                "status": record.status.value,
                "paymentMethodMissing": record.stripe.payment_method_missing,
            },
        )
        return _result(record, already_done=False)

    # --- steps -----------------------------------------------------------------------------------

    def _claim(self, plan: InvoicePlan, run_id: str | None, account: Account | None) -> Invoice:
        claim = self._tax_claim(account)
        if claim is not None and claim.mode is TaxMode.STRIPE_TAX and claim.treatment.taxed:
            # Decided again where the VAT is fixed: the account may have changed since the run planned.
            plan = with_credit_notes_for_downward_corrections(plan)
            self._refuse_negative_lines(plan)
        if self._invoices.create_if_absent(new_record(plan, self._now_ms(), run_id, tax=claim)):
            self._observe("claim", "saved")
            log.info("invoice claimed", extra={"invoiceId": plan.invoice_id, "userId": plan.account_id})
        record = self._invoices.get(plan.account_id, plan.invoice_id)
        if record is None:  # pragma: no cover - a put that succeeded cannot vanish
            raise BillingError(f"invoice record {plan.invoice_id} disappeared after the claim")
        return record

    def _refuse_negative_lines(self, plan: InvoicePlan) -> None:
        """Stripe Tax takes no negative line: a plan still carrying a credit in is refused before its claim."""
        if not plan.true_up.credit_in or self._invoices.get(plan.account_id, plan.invoice_id) is not None:
            return  # nothing negative, or claimed already (the claim is the invoice)
        raise NegativeLineUnderStripeTax(
            f"{plan.invoice_id} would carry the credit of {plan.true_up.credit_in} {plan.currency.upper()} from "
            f"{plan.true_up.credit_from} as a negative line, which Stripe Tax refuses: nothing is claimed. Bill the "
            "month with TAX_MODE=rates, or settle the credit with the account and bill it again"
        )

    def _settle_corrections(self, record: Invoice) -> Invoice:
        """Before the invoice is finalized, the credit notes that settle its downward corrections (once)."""
        if not record.true_up.credit_note_corrections:
            return record
        if self._true_up_credits is None:
            raise BillingError(
                f"{record.invoice_id} settles corrections by credit note, but this invoice job has no credit notes"
            )
        self._true_up_credits.settle(record)
        self._observe("credit-notes", "saved")
        return record

    def _tax_claim(self, account: Account | None) -> TaxClaim | None:
        """The VAT of the account's invoice: from its country and VAT id, in its language."""
        if self._tax is None:
            return None
        country, vat_id = (account.country, account.vat_id) if account else (None, None)
        language = (account.language if account else None) or self._language
        return TaxClaim(self._tax.treatment_for(country, vat_id), self._tax.mode, language)

    def _customer(self, record: Invoice, account: Account) -> Invoice:
        if record.stripe.customer_id:
            return record
        customer_id = account.stripe_customer_id
        if not customer_id:
            customer = self._payments.create_customer(
                account_id=record.account_id,
                email=account.email,
                idempotency_key=_key(record, "customer"),
            )
            self._observe("customer", "stripe")
            customer_id = customer.id
            if not self._accounts.set_stripe_customer_id_if_absent(record.account_id, customer_id):
                # Someone (the admin saving a card) recorded a customer first: bill that one.
                winner = self._accounts.get(record.account_id)
                if winner is None or winner.stripe_customer_id is None:  # pragma: no cover - it just won
                    raise BillingError(f"account {record.account_id} lost its Stripe customer")
                customer_id = winner.stripe_customer_id
        record = self._save(record, {"stripe_customer_id": customer_id})
        self._observe("customer", "saved")
        return record

    def _draft(self, record: Invoice) -> Invoice:
        if record.stripe.invoice_id:
            return record
        customer_id = _required(record.stripe.customer_id, record, "Stripe customer")
        existing = self._existing_draft(record, customer_id) if self._must_check_stripe(record) else None
        draft = existing or self._payments.create_draft_invoice(
            customer_id=customer_id,
            currency=record.currency.lower(),
            # The invoice says which rate converted the AWS costs (its memo).
            description=record.conversion.note if record.conversion else None,
            metadata=invoice_metadata(record),
            custom_fields=self._seller_fields,
            # The legend of an untaxed supply (reverse charge, not taxable, § 19 UStG).
            footer=record.vat.note if record.vat else None,
            automatic_tax=self._stripe_computes_tax(record),
            auto_advance=False,
            idempotency_key=_key(record, "create-invoice"),
        )
        self._observe("create-invoice", "stripe")
        try:
            record = self._save(
                record,
                {"stripe_invoice_id": draft.id},
                conditions=[FieldIs.one_of("stripe_invoice_id", draft.id, or_absent=True)],
            )
        except ConditionFailed as conflict:
            # Two workers on one job get the same draft from the same key; anything else is a bug.
            current = conflict.current.stripe.invoice_id if isinstance(conflict.current, Invoice) else None
            raise BillingError(
                f"{record.invoice_id} already refers to Stripe invoice {current}, not {draft.id}"
            ) from None
        self._observe("create-invoice", "saved")
        return record

    def _lines(self, record: Invoice) -> tuple[Invoice, StripeInvoice | None]:
        """Add the lines; also returns Stripe's invoice as this run saw it (``None`` if lines were in)."""
        if record.all_lines_added:
            return record, None
        stripe_invoice_id = _required(record.stripe.invoice_id, record, "Stripe invoice")
        lines = self._stripe_lines(record)
        invoice: StripeInvoice | None = None
        if self._must_check_stripe(record):
            invoice = self._payments.retrieve_invoice(stripe_invoice_id)
            if invoice.status != "draft":
                return self._no_longer_draft(record, invoice), None
            lines = [line for line in lines if line.metadata.get("line") not in invoice.line_kinds]
        if lines:
            try:
                invoice = self._payments.add_invoice_lines(
                    invoice_id=stripe_invoice_id, lines=lines, idempotency_key=_key(record, "add-lines")
                )
            except StripeObjectNotFound:
                if self._tax_rates is None or not any(line.tax_rate_ids for line in lines):
                    raise
                # The Tax Rate this process knew is gone (deleted or archived at Stripe): look it up again,
                # and retry under a fresh key, as the request now differs.
                self._tax_rates.forget()
                self._next_key_generation(record)
                raise
            except StripeRequestRejected:
                current = self._payments.retrieve_invoice(stripe_invoice_id)
                if current.status != "draft":
                    return self._no_longer_draft(record, current), None
                if self._tax_rates is not None:
                    self._tax_rates.forget()  # an archived Tax Rate is refused too: the retry finds an active one
                raise
            self._observe("add-lines", "stripe")
        assert invoice is not None
        record = self._save(
            record,
            {"lines_added": frozenset(LINE_KINDS), "stripe_total": invoice.total, "stripe_tax": invoice.total_tax},
        )
        record = self._advance(record, InvoiceStatus.DRAFT, {})
        self._observe("add-lines", "saved")
        return record, invoice

    def _no_longer_draft(self, record: Invoice, invoice: StripeInvoice) -> Invoice:
        # Another worker may have finished the job meanwhile (this one was slow or frozen): trust the
        # record it wrote before reporting anything.
        fresh = self._invoices.get(record.account_id, record.invoice_id) or record
        if fresh.all_lines_added:
            return fresh
        expected = [str(line.metadata["line"]) for line in invoice_lines(record)]
        missing = [kind for kind in expected if kind not in invoice.line_kinds]
        if not missing:
            # Every line this invoice needs is on it (Stripe advanced the complete draft): go on.
            return self._save(record, {"lines_added": frozenset(LINE_KINDS), "stripe_total": invoice.total})
        log.error(
            "Stripe invoice is no longer a draft but lines are missing",
            extra={
                "invoiceId": record.invoice_id,
                "stripeInvoiceId": record.stripe.invoice_id,
                "stripeStatus": invoice.status,
                "missingLines": missing,
            },
        )
        raise InvoiceNoLongerDraft(
            f"Stripe invoice {record.stripe.invoice_id} of {record.invoice_id} is {invoice.status}, "
            f"lines {', '.join(missing)} were never added"
        )

    def _finalize(self, record: Invoice, account: Account, answer: StripeInvoice | None) -> Invoice:
        """Finalize after checking Stripe's total: from this run's add_lines answer, else from a read.

        A job that resumes (its lines were added by an earlier attempt) reads the invoice first: the
        draft may have changed since, or an earlier attempt or a webhook may have finalized it.
        """
        if record.stripe.finalized_at:
            return record  # another attempt finalized it while this one was away
        stripe_invoice_id = _required(record.stripe.invoice_id, record, "Stripe invoice")
        invoice = answer if answer is not None else self._payments.retrieve_invoice(stripe_invoice_id)
        self._require_total(record, invoice)
        if invoice.status == "draft":
            self._require_balance(record, invoice)
            invoice = self._finalize_in_stripe(record)
            self._observe("finalize", "stripe")
        balance = BalanceUse.of(invoice.total or 0, invoice.starting_balance, invoice.ending_balance, record.currency)
        changes: InvoiceChanges = {
            # Stripe still finalizes and tries to charge; the record says why it will not be paid.
            "payment_method_missing": not account.has_payment_method,
            "finalized_at": self._now_ms(),
            "balance_applied": balance.applied,
            "carried_to_balance": balance.carried,
        }
        if balance.carried:
            log.info(
                "amount due below Stripe's minimum charge: carried to the customer's balance, not charged",
                extra={"invoiceId": record.invoice_id, "carried": str(balance.carried)},
            )
        # What Stripe did not say stays as recorded (a webhook may have said it first).
        if invoice.number:
            changes["number"] = invoice.number
        if invoice.hosted_invoice_url:
            changes["hosted_invoice_url"] = invoice.hosted_invoice_url
        if invoice.invoice_pdf:
            changes["invoice_pdf"] = invoice.invoice_pdf
        record = self._advance(record, InvoiceStatus.OPEN, changes)
        self._observe("finalize", "saved")
        return record

    def _require_balance(self, record: Invoice, draft: StripeInvoice) -> None:
        """Raise ``CustomerBalanceMismatch`` unless the balance Stripe would apply is the one the books explain.

        A draft's ``starting_balance`` is the customer's balance now; finalizing applies it. Read again
        once if it disagrees: a credit note issued since the draft was read moved it.
        """
        if self._books_balance is None:
            return
        expected = to_minor_units(self._books_balance(record), record.currency)
        if draft.starting_balance != expected:
            draft = self._payments.retrieve_invoice(_required(record.stripe.invoice_id, record, "Stripe invoice"))
        total = draft.total or 0
        due = max(total + balance_applied(total, expected), 0)
        if draft.starting_balance == expected and draft.amount_due in (None, due):
            return
        log.error(
            "Stripe's customer balance differs from the books; not finalizing",
            extra={
                "invoiceId": record.invoice_id,
                "stripeInvoiceId": record.stripe.invoice_id,
                "stripeBalance": draft.starting_balance,
                "booksBalance": expected,
                "stripeAmountDue": draft.amount_due,
                "amountDue": due,
            },
        )
        raise CustomerBalanceMismatch(
            f"{record.invoice_id}: Stripe would apply a customer balance of {draft.starting_balance} (minor units), "
            f"the books explain {expected}; not finalized (record the balance's cause, then rerun)"
        )

    def _finalize_in_stripe(self, record: Invoice) -> StripeInvoice:
        stripe_invoice_id = _required(record.stripe.invoice_id, record, "Stripe invoice")
        try:
            return self._payments.finalize_invoice(
                stripe_invoice_id, idempotency_key=_key(record, "finalize"), auto_advance=True
            )
        except StripeRequestRejected as rejected:
            # Finalized already (under an expired key, or by hand)? Then take it as it is now.
            invoice = self._payments.retrieve_invoice(stripe_invoice_id)
            if invoice.status != "draft":
                return invoice
            # Stripe refused to finalize (invoice.finalization_failed) and keeps that answer for the key.
            reason = invoice.finalization_error or str(rejected)
            self._save(record, {"finalization_error": reason})
            self._next_key_generation(record)
            log.error(
                "Stripe could not finalize the invoice; the job will retry it",
                extra={"invoiceId": record.invoice_id, "stripeInvoiceId": stripe_invoice_id, "reason": reason},
            )
            raise InvoiceFinalizationFailed(
                f"Stripe could not finalize {stripe_invoice_id} of {record.invoice_id}: {reason}"
            ) from None

    def _einvoice(self, record: Invoice, account: Account) -> Invoice:
        """Write the finalized invoice's XRechnung and ZUGFeRD files, once (resumed like any step)."""
        if self._einvoices is None or record.vat is None or (record.einvoice.xml and record.einvoice.pdf):
            return record
        record = self._einvoices.issue(record, account, now_ms=self._now_ms())
        self._observe("einvoice", "saved")
        return record

    def _mail_invoice(self, record: Invoice) -> None:
        """Queue the e-mail of the invoice with both files (a rerun finds it queued and sends nothing)."""
        if self._mail is None or not (record.einvoice.xml and record.einvoice.pdf):
            return
        self._mail(record.invoice_id)
        self._observe("mail", "requested")

    # --- helpers ---------------------------------------------------------------------------------

    def _stripe_computes_tax(self, record: Invoice) -> bool:
        return self._tax is not None and self._tax.mode is TaxMode.STRIPE_TAX and _is_standard_rated(record)

    def _stripe_lines(self, record: Invoice) -> list[InvoiceLine]:
        """The record's lines with their VAT: the Tax Rate, or manual amounts of it."""
        if self._tax_rates is None or not _is_standard_rated(record) or self._stripe_computes_tax(record):
            return invoice_lines(record)
        if record.vat and record.vat.manual_line_tax:
            return invoice_lines(record, tax_rate=self._tax_rates.spec)
        return invoice_lines(record, tax_rate_id=self._tax_rates.rate_id())

    def _must_check_stripe(self, record: Invoice) -> bool:
        """Whether a replay under the step's key may be missing, so Stripe's state must be read first."""
        expired = self._now_ms() - record.created_at >= self._window_ms
        return expired or record.stripe.key_generation > 0

    def _next_key_generation(self, record: Invoice) -> None:
        current = self._invoices.get(record.account_id, record.invoice_id) or record
        generation = current.stripe.key_generation
        try:
            self._save(
                current,
                {"key_generation": generation + 1},
                conditions=[FieldIs.one_of("key_generation", generation, or_absent=generation == 0)],
            )
        except ConditionFailed:
            pass  # another attempt moved it on already: its keys are fresh too

    def _existing_draft(self, record: Invoice, customer_id: str) -> StripeInvoice | None:
        for invoice in self._payments.list_invoices(customer_id):
            ours = invoice.metadata.get("invoiceId") == record.invoice_id
            if ours and invoice.status != "void":
                log.info("found the Stripe invoice of an earlier attempt", extra={"invoiceId": record.invoice_id})
                return invoice
        return None

    def _require_total(self, record: Invoice, invoice: StripeInvoice) -> None:
        """Raise ``InvoiceTotalMismatch`` unless Stripe's total, net and tax are exactly the record's."""
        expected = to_minor_units(record.amount, record.currency)
        mismatch = {}
        if invoice.total != expected:
            mismatch["total"] = (invoice.total, expected)
        if record.vat is not None:
            net, tax = to_minor_units(record.net, record.currency), to_minor_units(record.tax, record.currency)
            if invoice.total_excluding_tax is not None and invoice.total_excluding_tax != net:
                mismatch["net"] = (invoice.total_excluding_tax, net)
            if invoice.total_tax != tax:
                mismatch["tax"] = (invoice.total_tax, tax)
        if not mismatch:
            return
        log.error(
            "Stripe invoice total differs from the record; not finalizing",
            extra={
                "invoiceId": record.invoice_id,
                "stripeInvoiceId": record.stripe.invoice_id,
                "stripeStatus": invoice.status,
                "stripeTotal": invoice.total,
                "expectedTotal": expected,
                "stripeTax": invoice.total_tax,
                "mismatch": sorted(mismatch),
            },
        )
        stripe_said = ", ".join(f"{what} {theirs} (record {ours})" for what, (theirs, ours) in mismatch.items())
        raise InvoiceTotalMismatch(
            f"Stripe invoice {record.stripe.invoice_id} of {record.invoice_id} disagrees with the record: "
            f"{stripe_said} (minor units)"
        )

    def _save(self, record: Invoice, changes: InvoiceChanges, conditions: Sequence[FieldIs] = ()) -> Invoice:
        return self._invoices.update(
            record.account_id, record.invoice_id, {**changes, "updated_at": self._now_ms()}, conditions=conditions
        )

    def _advance(self, record: Invoice, status: InvoiceStatus, changes: InvoiceChanges) -> Invoice:
        """Set ``status`` unless the record is already further along (a webhook got there first)."""
        try:
            return self._save(
                record,
                {**changes, "status": status},
                conditions=[FieldIs.one_of("status", *sorted(allowed_predecessors(status)))],
            )
        except ConditionFailed:
            if not changes:
                return self._invoices.get(record.account_id, record.invoice_id) or record
            return self._save(record, changes)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _key(record: Invoice, step: str) -> str:
    generation = record.stripe.key_generation
    return f"{record.invoice_id}:{step}" if generation == 0 else f"{record.invoice_id}:{step}:{generation}"


def _required(value: str | None, record: Invoice, what: str) -> str:
    """A Stripe id an earlier step recorded (a record without it is corrupt, not resumable)."""
    if not value:
        raise BillingError(f"invoice record {record.invoice_id} has no {what} at a step that needs one")
    return value


def _result(record: Invoice, *, already_done: bool) -> InvoiceJobResult:
    return InvoiceJobResult(
        account_id=record.account_id,
        invoice_id=record.invoice_id,
        status=record.status.value,
        stripe_invoice_id=record.stripe.invoice_id,
        total=record.amount,
        currency=record.currency,
        payment_method_missing=record.stripe.payment_method_missing,
        already_done=already_done,
    )


def _is_standard_rated(record: Invoice) -> bool:
    """Whether the invoice was claimed with German VAT (category S)."""
    return record.vat is not None and record.vat.category == VatCategory.STANDARD.value
