"""The invoice job: one account's invoice for one period, from a claimed record to a finalized Stripe invoice.

Steps, each resumable (the ``billing`` record stores progress after every one):

    claim           conditional put of the record (status pending, amounts from the plan)
    customer        the account's Stripe customer (created once if the account has none)
    create-invoice  Stripe draft with metadata userId / invoiceId / period -> record.stripeInvoiceId
    add-lines       both lines in one add_lines request; its answer's total -> record.linesAdded,
                    record.stripeTotal, status draft
    finalize        Stripe finalizes; it charges the default payment method -> status open, number, URLs

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as day_time
from decimal import Decimal
from typing import Any

from billing_core.domain.costs import Period
from billing_core.domain.invoice_plan import InvoicePlan
from billing_core.domain.lifecycle import InvoiceStatus, allowed_predecessors
from billing_core.domain.money import to_minor_units
from billing_core.errors import BillingError, ConditionFailed, StripeFailedAfterExecution, StripeRequestRejected
from billing_core.ports import (
    AccountRepository,
    FieldIs,
    InvoiceLine,
    InvoiceRepository,
    Item,
    PaymentGateway,
    StripeObject,
)

log = logging.getLogger(__name__)

STEPS = ("claim", "customer", "create-invoice", "add-lines", "finalize")
LINE_KINDS = ("base-fee", "aws")

# Stripe forgets idempotency keys after 24 hours; an hour of margin covers clock skew and slow steps.
IDEMPOTENCY_WINDOW_SECONDS = 23 * 3600

MESSAGE_TYPE = "invoice-job"

StepObserver = Callable[[str, str], None]
"""Called as ``observe(step, phase)``: phase ``"stripe"`` right after the Stripe call (before the
record is saved) and ``"saved"`` after the record holds the step. Production passes none; tests pass
one that raises to simulate a crash at that exact point."""


class AccountNotFound(BillingError):
    """The job's account has no item in the accounts table (deleted after the run planned it)."""


class InvoiceMessageInvalid(BillingError):
    """A ``billing-jobs`` message that does not describe an invoice job; retrying will not help."""


class InvoiceNoLongerDraft(BillingError):
    """The Stripe invoice left the draft state (finalized, voided) before all its lines were added."""


class InvoiceTotalMismatch(BillingError):
    """The Stripe invoice's total is not the record's amount; it is not finalized (or recorded) as is."""


class InvoiceFinalizationFailed(BillingError):
    """Stripe refused to finalize the draft (``invoice.finalization_failed``); the job retries it."""


@dataclass(frozen=True)
class InvoiceJobResult:
    """Where one account's invoice stands after the job ran."""

    user_id: str
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
    ) -> None:
        self._invoices = invoices
        self._accounts = accounts
        self._payments = payments
        self._clock = clock
        self._observe = observe or _no_observer
        self._window_ms = idempotency_window_seconds * 1000

    def run(self, plan: InvoicePlan, *, run_id: str | None = None) -> InvoiceJobResult:
        """Take the invoice of ``plan`` as far as it goes: finalized in Stripe, progress on the record."""
        record = self._claim(plan, run_id)
        if record.get("finalizedAt"):
            return _result(record, already_done=True)
        account = self._accounts.get(plan.user_id)
        if account is None:
            raise AccountNotFound(f"account {plan.user_id} has no item in the accounts table")
        try:
            record = self._customer(record, account)
            record = self._draft(record)
            record, answer = self._lines(record)
            record = self._finalize(record, account, answer)
        except StripeFailedAfterExecution:
            # Stripe replays this 500 for the key: the retry looks at what exists and uses fresh keys.
            self._next_key_generation(record)
            raise
        log.info(
            "invoice finalized",
            extra={"invoiceId": record["invoiceId"], "stripeInvoiceId": record["stripeInvoiceId"],
                   "status": record["status"], "paymentMethodMissing": record["paymentMethodMissing"]},
        )
        return _result(record, already_done=False)

    # --- steps -----------------------------------------------------------------------------------

    def _claim(self, plan: InvoicePlan, run_id: str | None) -> Item:
        if self._invoices.create_if_absent(new_record(plan, self._now_ms(), run_id)):
            self._observe("claim", "saved")
            log.info("invoice claimed", extra={"invoiceId": plan.invoice_id, "userId": plan.user_id})
        record = self._invoices.get(plan.user_id, plan.invoice_id)
        if record is None:  # pragma: no cover - a put that succeeded cannot vanish
            raise BillingError(f"invoice record {plan.invoice_id} disappeared after the claim")
        return record

    def _customer(self, record: Item, account: Item) -> Item:
        if record.get("stripeCustomerId"):
            return record
        customer_id = account.get("stripeCustomerId")
        if not customer_id:
            customer = self._payments.create_customer(
                user_id=record["userId"], email=account.get("email"),
                idempotency_key=_key(record, "customer"),
            )
            self._observe("customer", "stripe")
            customer_id = customer["id"]
            if not self._accounts.set_stripe_customer_id_if_absent(record["userId"], customer_id):
                # Someone (the admin saving a card) recorded a customer first: bill that one.
                customer_id = (self._accounts.get(record["userId"]) or {})["stripeCustomerId"]
        record = self._save(record, {"stripeCustomerId": customer_id})
        self._observe("customer", "saved")
        return record

    def _draft(self, record: Item) -> Item:
        if record.get("stripeInvoiceId"):
            return record
        existing = self._existing_draft(record) if self._must_check_stripe(record) else None
        draft = existing or self._payments.create_draft_invoice(
            customer_id=record["stripeCustomerId"],
            currency=record["currency"].lower(),
            metadata=invoice_metadata(record),
            auto_advance=False,
            idempotency_key=_key(record, "create-invoice"),
        )
        self._observe("create-invoice", "stripe")
        try:
            record = self._save(
                record, {"stripeInvoiceId": draft["id"]},
                conditions=[FieldIs.one_of("stripeInvoiceId", draft["id"], or_absent=True)],
            )
        except ConditionFailed as conflict:
            # Two workers on one job get the same draft from the same key; anything else is a bug.
            raise BillingError(
                f"{record['invoiceId']} already refers to Stripe invoice "
                f"{(conflict.current or {}).get('stripeInvoiceId')}, not {draft['id']}"
            ) from None
        self._observe("create-invoice", "saved")
        return record

    def _lines(self, record: Item) -> tuple[Item, StripeObject | None]:
        """Add the lines; also returns Stripe's invoice as this run saw it (``None`` if lines were in)."""
        if set(LINE_KINDS) <= set(record.get("linesAdded", [])):
            return record, None
        lines = invoice_lines(record)
        invoice: StripeObject | None = None
        if self._must_check_stripe(record):
            invoice = self._payments.retrieve_invoice(record["stripeInvoiceId"])
            if invoice.get("status") != "draft":
                return self._no_longer_draft(record, invoice), None
            present = _line_kinds(invoice)
            lines = [line for line in lines if line.metadata.get("line") not in present]
        if lines:
            try:
                invoice = self._payments.add_invoice_lines(
                    invoice_id=record["stripeInvoiceId"], lines=lines, idempotency_key=_key(record, "add-lines")
                )
            except StripeRequestRejected:
                current = self._payments.retrieve_invoice(record["stripeInvoiceId"])
                if current.get("status") != "draft":
                    return self._no_longer_draft(record, current), None
                raise
            self._observe("add-lines", "stripe")
        assert invoice is not None
        record = self._save(record, {"linesAdded": sorted(LINE_KINDS), "stripeTotal": invoice.get("total")})
        record = self._advance(record, InvoiceStatus.DRAFT, {})
        self._observe("add-lines", "saved")
        return record, invoice

    def _no_longer_draft(self, record: Item, invoice: StripeObject) -> Item:
        # Another worker may have finished the job meanwhile (this one was slow or frozen): trust the
        # record it wrote before reporting anything.
        fresh = self._invoices.get(record["userId"], record["invoiceId"]) or record
        if set(LINE_KINDS) <= set(fresh.get("linesAdded", [])):
            return fresh
        missing = [kind for kind in LINE_KINDS if kind not in _line_kinds(invoice)]
        log.error(
            "Stripe invoice is no longer a draft but lines are missing",
            extra={"invoiceId": record["invoiceId"], "stripeInvoiceId": record["stripeInvoiceId"],
                   "stripeStatus": invoice.get("status"), "missingLines": missing},
        )
        raise InvoiceNoLongerDraft(
            f"Stripe invoice {record['stripeInvoiceId']} of {record['invoiceId']} is {invoice.get('status')}, "
            f"lines {', '.join(missing)} were never added"
        )

    def _finalize(self, record: Item, account: Item, answer: StripeObject | None) -> Item:
        """Finalize after checking Stripe's total: from this run's add_lines answer, else from a read.

        A job that resumes (its lines were added by an earlier attempt) reads the invoice first: the
        draft may have changed since, or an earlier attempt or a webhook may have finalized it.
        """
        invoice = answer if answer is not None else self._payments.retrieve_invoice(record["stripeInvoiceId"])
        self._require_total(record, invoice.get("total"), invoice)
        if invoice.get("status") == "draft":
            invoice = self._finalize_in_stripe(record)
            self._observe("finalize", "stripe")
        fields = {
            "number": invoice.get("number"),
            "hostedInvoiceUrl": invoice.get("hosted_invoice_url"),
            "invoicePdf": invoice.get("invoice_pdf"),
            # Stripe still finalizes and tries to charge; the record says why it will not be paid.
            "paymentMethodMissing": not has_payment_method(account),
            "finalizedAt": self._now_ms(),
        }
        record = self._advance(record, InvoiceStatus.OPEN, {k: v for k, v in fields.items() if v is not None})
        self._observe("finalize", "saved")
        return record

    def _finalize_in_stripe(self, record: Item) -> StripeObject:
        try:
            return self._payments.finalize_invoice(
                record["stripeInvoiceId"], idempotency_key=_key(record, "finalize"), auto_advance=True
            )
        except StripeRequestRejected as rejected:
            # Finalized already (under an expired key, or by hand)? Then take it as it is now.
            invoice = self._payments.retrieve_invoice(record["stripeInvoiceId"])
            if invoice.get("status") != "draft":
                return invoice
            # Stripe refused to finalize (invoice.finalization_failed) and keeps that answer for the key.
            error = invoice.get("last_finalization_error") or {}
            reason = error.get("message") or str(rejected)
            self._save(record, {"finalizationError": reason})
            self._next_key_generation(record)
            log.error("Stripe could not finalize the invoice; the job will retry it",
                      extra={"invoiceId": record["invoiceId"], "stripeInvoiceId": record["stripeInvoiceId"],
                             "reason": reason})
            raise InvoiceFinalizationFailed(
                f"Stripe could not finalize {record['stripeInvoiceId']} of {record['invoiceId']}: {reason}"
            ) from None

    # --- helpers ---------------------------------------------------------------------------------

    def _must_check_stripe(self, record: Item) -> bool:
        """Whether a replay under the step's key may be missing, so Stripe's state must be read first."""
        expired = self._now_ms() - int(record["createdAt"]) >= self._window_ms
        return expired or int(record.get("keyGeneration", 0)) > 0

    def _next_key_generation(self, record: Item) -> None:
        current = self._invoices.get(record["userId"], record["invoiceId"]) or record
        generation = int(current.get("keyGeneration", 0))
        try:
            self._save(current, {"keyGeneration": generation + 1},
                       conditions=[FieldIs.one_of("keyGeneration", generation, or_absent=generation == 0)])
        except ConditionFailed:
            pass  # another attempt moved it on already: its keys are fresh too

    def _existing_draft(self, record: Item) -> StripeObject | None:
        for invoice in self._payments.list_invoices(record["stripeCustomerId"]):
            ours = (invoice.get("metadata") or {}).get("invoiceId") == record["invoiceId"]
            if ours and invoice.get("status") != "void":
                log.info("found the Stripe invoice of an earlier attempt", extra={"invoiceId": record["invoiceId"]})
                return invoice
        return None

    def _require_total(self, record: Item, total: Any, invoice: StripeObject | None) -> None:
        """Raise ``InvoiceTotalMismatch`` unless Stripe's invoice total is exactly the record's amount."""
        expected = to_minor_units(record["amount"], record["currency"])
        if total == expected:
            return
        log.error(
            "Stripe invoice total differs from the record; not finalizing",
            extra={"invoiceId": record["invoiceId"], "stripeInvoiceId": record.get("stripeInvoiceId"),
                   "stripeStatus": (invoice or {}).get("status"), "stripeTotal": total, "expectedTotal": expected},
        )
        raise InvoiceTotalMismatch(
            f"Stripe invoice {record.get('stripeInvoiceId')} of {record['invoiceId']} totals {total}, "
            f"the record {expected} (minor units)"
        )

    def _save(self, record: Item, fields: Mapping[str, Any], conditions: Sequence[FieldIs] = ()) -> Item:
        return self._invoices.update(
            record["userId"], record["invoiceId"], {**fields, "updatedAt": self._now_ms()}, conditions=conditions
        )

    def _advance(self, record: Item, status: InvoiceStatus, fields: Mapping[str, Any]) -> Item:
        """Set ``status`` unless the record is already further along (a webhook got there first)."""
        try:
            return self._save(
                record, {**fields, "status": status.value},
                conditions=[FieldIs.one_of("status", *sorted(allowed_predecessors(status)))],
            )
        except ConditionFailed:
            if not fields:
                return self._invoices.get(record["userId"], record["invoiceId"]) or record
            return self._save(record, fields)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def invoice_lines(record: Mapping[str, Any]) -> list[InvoiceLine]:
    """The record's Stripe lines, base fee first, each with the billed month as its service period."""
    period = Period.parse(record["period"]["label"])
    start, end = _epoch(period.start), _epoch(period.end) - 1  # Stripe's period end is inclusive
    amounts = {"base-fee": record["baseFee"], "aws": record["awsCosts"]}
    return [
        InvoiceLine(
            amount=to_minor_units(amounts[kind], record["currency"]),
            description=record["lineDescriptions"][kind],
            metadata={"invoiceId": record["invoiceId"], "line": kind},
            period_start=start,
            period_end=end,
        )
        for kind in LINE_KINDS
    ]


def _epoch(day: date) -> int:
    return int(datetime.combine(day, day_time.min, tzinfo=UTC).timestamp())


def new_record(plan: InvoicePlan, now_ms: int, run_id: str | None = None) -> Item:
    """The ``billing`` item a claim writes: status pending, the plan's amounts, no Stripe ids yet."""
    record: Item = {
        "userId": plan.user_id,
        "invoiceId": plan.invoice_id,
        "status": InvoiceStatus.PENDING.value,
        "period": {"label": plan.period.label, "start": plan.period.start.isoformat(),
                   "end": plan.period.end.isoformat()},
        "currency": plan.currency,
        "amount": plan.total,
        "baseFee": plan.base_fee,
        "awsCosts": plan.aws_costs,
        "awsBreakdown": dict(plan.breakdown),
        "lineDescriptions": {"base-fee": plan.base_fee_description, "aws": plan.aws_description},
        "costsEstimated": plan.costs_estimated,
        "markupPercent": plan.markup_percent,
        "linesAdded": [],
        "createdAt": now_ms,
        "updatedAt": now_ms,
    }
    if plan.fx_rate is not None:
        record.update(fxRate=plan.fx_rate, fxSource=plan.fx_source)
        if plan.fx_date is not None:
            record["fxDate"] = plan.fx_date.isoformat()
    if plan.cost_scope is not None:
        record["costScope"] = plan.cost_scope
    if run_id:
        record["runId"] = run_id
    return record


def invoice_metadata(record: Mapping[str, Any]) -> dict[str, str]:
    """The Stripe invoice's metadata: what links it back to the account, the record and the period."""
    return {"userId": record["userId"], "invoiceId": record["invoiceId"], "period": record["period"]["label"]}


def has_payment_method(account: Mapping[str, Any]) -> bool:
    """Whether the account has a default payment method Stripe can charge."""
    return bool(account.get("defaultPaymentMethod") or account.get("paymentMethod"))


def _line_kinds(invoice: StripeObject) -> set[str]:
    lines = (invoice.get("lines") or {}).get("data", [])
    return {str((line.get("metadata") or {}).get("line")) for line in lines}


def _key(record: Mapping[str, Any], step: str) -> str:
    generation = int(record.get("keyGeneration", 0))
    return f"{record['invoiceId']}:{step}" if generation == 0 else f"{record['invoiceId']}:{step}:{generation}"


def _result(record: Item, *, already_done: bool) -> InvoiceJobResult:
    return InvoiceJobResult(
        user_id=record["userId"],
        invoice_id=record["invoiceId"],
        status=record["status"],
        stripe_invoice_id=record.get("stripeInvoiceId"),
        total=record["amount"],
        currency=record["currency"],
        payment_method_missing=bool(record.get("paymentMethodMissing", False)),
        already_done=already_done,
    )


# --- the billing-jobs message ----------------------------------------------------------------------


def plan_to_message(plan: InvoicePlan, run_id: str) -> dict[str, Any]:
    """The ``billing-jobs`` message for one plan: everything the job needs, money as strings."""
    return {
        "type": MESSAGE_TYPE,
        "runId": run_id,
        "plan": {
            "userId": plan.user_id,
            "invoiceId": plan.invoice_id,
            "period": plan.period.label,
            "currency": plan.currency,
            "baseFee": str(plan.base_fee),
            "awsCosts": str(plan.aws_costs),
            "breakdown": {service: str(amount) for service, amount in plan.breakdown.items()},
            "total": str(plan.total),
            "fxRate": None if plan.fx_rate is None else str(plan.fx_rate),
            "fxSource": plan.fx_source,
            "fxDate": None if plan.fx_date is None else plan.fx_date.isoformat(),
            "markupPercent": str(plan.markup_percent),
            "costsEstimated": plan.costs_estimated,
            "baseFeeDescription": plan.base_fee_description,
            "awsDescription": plan.aws_description,
            "costScope": plan.cost_scope,
        },
    }


def plan_from_message(body: Mapping[str, Any]) -> tuple[InvoicePlan, str | None]:
    """The plan and run id of a ``billing-jobs`` message; ``InvoiceMessageInvalid`` if it is not one."""
    if not isinstance(body, Mapping) or body.get("type") != MESSAGE_TYPE or not isinstance(body.get("plan"), Mapping):
        raise InvoiceMessageInvalid("not an invoice-job message")
    p = body["plan"]
    try:
        plan = InvoicePlan(
            user_id=p["userId"],
            invoice_id=p["invoiceId"],
            period=Period.parse(p["period"]),
            currency=p["currency"],
            base_fee=Decimal(str(p["baseFee"])),
            aws_costs=Decimal(str(p["awsCosts"])),
            breakdown={service: Decimal(str(amount)) for service, amount in p["breakdown"].items()},
            total=Decimal(str(p["total"])),
            fx_rate=None if p.get("fxRate") is None else Decimal(str(p["fxRate"])),
            fx_source=p.get("fxSource"),
            fx_date=None if p.get("fxDate") is None else date.fromisoformat(p["fxDate"]),
            markup_percent=Decimal(str(p["markupPercent"])),
            costs_estimated=bool(p["costsEstimated"]),
            base_fee_description=p["baseFeeDescription"],
            aws_description=p["awsDescription"],
            cost_scope=p.get("costScope"),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        raise InvoiceMessageInvalid(f"invoice-job message is malformed: {type(error).__name__}") from None
    if plan.base_fee + plan.aws_costs != plan.total:
        raise InvoiceMessageInvalid(f"invoice-job message for {plan.invoice_id} does not add up")
    return plan, body.get("runId")
