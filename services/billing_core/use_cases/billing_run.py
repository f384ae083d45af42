"""The billing run: fetch the period's costs once, plan every account's invoice, enqueue one job each.

Started by the monthly cron (every scheduler-worker replica fires it) or by ``billing run``. Only one
run of a period enqueues at a time, because the run holds the lease ``billing-run#<period>``:

    replica A: acquire lease billing-run#2024-11 -> granted; costs; enqueue 1,000 jobs; record; release
    replica B: acquire lease billing-run#2024-11 -> refused (A holds it) -> LeaseHeld, nothing enqueued
    replica B (later, cron): run record says "enqueued" -> AlreadyBilled, nothing enqueued

With ``COST_FINALITY=final`` the cron's run waits while Cost Explorer still marks the month
``Estimated`` (AWS's bill is final only days after the month): it records "waiting for final costs"
and the scheduler tries again once a day, until the costs are final or the deadline day comes, when
it bills what is there, flagged estimated. Each try is one Cost Explorer query (plus its pages).

A rerun from the CLI (``only_once=False``) enqueues the jobs again: each job finds its claimed record
and finishes or skips it, so a rerun completes a crashed run without a second invoice.
The run never calls Stripe; the jobs do (``billing_core.use_cases.invoice_job``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from billing_core.domain.costs import PAYER, CostAttribution, Period
from billing_core.domain.errors import ConfigurationError
from billing_core.domain.fx import RateNotPublished
from billing_core.domain.invoice_plan import BillingPolicy, InvoicePlan, plan_invoices
from billing_core.domain.records import MAX_SKIPPED_KEPT, Account, BillingRunRecord, RunStatus
from billing_core.domain.seller import Seller
from billing_core.domain.tax import TaxMode, TaxPolicy
from billing_core.errors import BillingError, ExchangeRateUnavailable, InvalidStoredRecord
from billing_core.ports import (
    AccountRepository,
    CostSource,
    InvoiceRepository,
    Leases,
    MessageQueue,
    OutgoingMessage,
    RunRecords,
)
from billing_core.use_cases.exchange_rates import ExchangeRates
from billing_core.use_cases.invoice_messages import plan_to_message
from billing_core.use_cases.true_up import fetch_months, trued_up

log = logging.getLogger(__name__)


def replica_owner() -> str:
    """A lease owner id unique to this process (host, pid and a random part)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# Long enough to read the accounts, query Cost Explorer and enqueue 10,000 messages; a crashed run's
# lease expires after it and the next trigger may start again.
LEASE_SECONDS = 15 * 60
RUN_RECORD_DAYS = 400
# Plans handed to the queue at a time (the adapter sends them ten to a SendMessageBatch).
ENQUEUE_BATCH = 500


class BillingRunRefused(BillingError):
    """The run did not start; the message says why."""


class PeriodNotEnded(BillingRunRefused):
    """The period has not ended (UTC): its costs are still growing, and its invoice id would be spent."""


class RateNotAvailable(BillingRunRefused):
    """The period's exchange rate is not published yet or the feed cannot be read: nothing is guessed."""


class LeaseHeld(BillingRunRefused):
    """Another run of the same period holds the lease right now."""


class AlreadyBilled(BillingRunRefused):
    """A run of this period already enqueued its jobs (the cron does not bill a month twice)."""


@dataclass(frozen=True)
class SkippedAccount:
    """An account the run could not plan (its settings are invalid); it gets no invoice until fixed."""

    account_id: str
    reason: str


@dataclass(frozen=True)
class BillingRunResult:
    """What a run planned (and, unless a dry run, enqueued)."""

    run_id: str
    period: Period
    plans: list[InvoicePlan]
    skipped: list[SkippedAccount] = field(default_factory=list)
    cost_requests: int = 0  # paid requests to the cost source this run made (Cost Explorer: the query's pages)
    enqueued: int = 0
    dry_run: bool = False
    costs_estimated: bool = False  # Cost Explorer still marked the period's costs as estimated
    waiting_for_final_costs: bool = False  # nothing enqueued: the scheduler checks again tomorrow


def lease_name(period: Period) -> str:
    """The lease that lets one run of ``period`` enqueue at a time."""
    return f"billing-run#{period.label}"


class BillingRun:
    """Plans and enqueues a period's invoices; collaborators are the ports it needs, nothing else."""

    def __init__(
        self,
        *,
        accounts: AccountRepository,
        costs: CostSource,
        leases: Leases,
        runs: RunRecords,
        billing_jobs: MessageQueue,
        policy: BillingPolicy,
        rates: ExchangeRates | None = None,
        attribution: CostAttribution = PAYER,
        wait_for_final_costs: bool = False,
        final_costs_deadline_day: int = 8,
        invoices: InvoiceRepository | None = None,
        correction_months: int = 0,
        clock: Callable[[], float] = time.time,
        seller: Seller | None = None,
        cost_requests: Callable[[], int] | None = None,
        tax: TaxPolicy | None = None,
    ) -> None:
        """``cost_requests`` reads how many paid requests the cost source has made so far, if it counts them."""
        self._accounts = accounts
        self._costs = costs
        self._leases = leases
        self._runs = runs
        self._jobs = billing_jobs
        self._policy = policy
        self._rates = rates
        self._attribution = attribution
        self._wait_for_final = wait_for_final_costs
        self._deadline_day = final_costs_deadline_day
        self._invoices = invoices
        self._correction_months = correction_months if invoices is not None else 0
        self._clock = clock
        self._seller = seller
        self._cost_requests = cost_requests or (lambda: 0)
        self._tax = tax

    def plan(self, period: Period, *, only_account: str | None = None) -> BillingRunResult:
        """Every account's invoice plan for ``period``, from one Cost Explorer query; writes nothing.

        Raises ``PeriodNotEnded`` for a month that is not over yet, ``ConfigurationError`` when costs are
        not attributed to accounts (the whole payer account) and more than one account exists.
        """
        self._require_ended(period)
        accounts, skipped = self._accounts_to_bill(only_account)
        accounts, unscoped = self._with_cost_scope(accounts, skipped, only_account)
        skipped = skipped + unscoped
        before = self._cost_requests()
        if self._correction_months:
            # One MONTHLY query for the new month and the months it may correct.
            months = fetch_months(self._costs, period, self._correction_months, self._attribution)
            report = months.billed
        else:
            report = self._costs.costs(period.start, period.end, self._attribution)
        cost_requests = self._cost_requests() - before
        policy = self._policy_for(period, report.currency)
        # Refuse before planning anything: USD costs billed as EUR would be wrong on every invoice.
        policy.check_can_convert(report.currency)
        plans = plan_invoices(period, report, accounts, policy)
        if self._correction_months and self._invoices is not None:
            plans = trued_up(
                plans,
                self._invoices,
                months,
                self._correction_months,
                policy.language,
                by_credit_note=self._stripe_tax_accounts(accounts),
            )
        return BillingRunResult(
            run_id="dry-run",
            period=period,
            plans=plans,
            skipped=skipped,
            cost_requests=cost_requests,
            dry_run=True,
            costs_estimated=report.estimated,
        )

    def start(
        self,
        period: Period,
        *,
        owner: str,
        trigger: str,
        only_account: str | None = None,
        only_once: bool = False,
    ) -> BillingRunResult:
        """Take the period's lease, plan, enqueue one job per account and record the run.

        ``only_once`` (the cron) refuses a period whose run already enqueued; the CLI reruns it.
        Raises ``LeaseHeld``, ``AlreadyBilled`` or ``ConfigurationError`` (missing FX rate, several
        accounts but costs by service only) or ``SellerIncomplete`` without enqueuing anything.
        """
        self._require_ended(period)
        if self._seller is not None:
            self._seller.require_complete()  # no invoice goes out without the seller §14 UStG requires
        name = lease_name(period)
        if only_once and self._already_enqueued(period):
            raise AlreadyBilled(f"the billing run for {period.label} already enqueued its invoices")
        if not self._leases.acquire_lease(name, owner, LEASE_SECONDS):
            raise LeaseHeld(f"another billing run for {period.label} is in progress")
        try:
            # Checked again under the lease: the replica that held it a moment ago may just have finished.
            if only_once and self._already_enqueued(period):
                raise AlreadyBilled(f"the billing run for {period.label} already enqueued its invoices")
            run_id = f"run_{period.label}_{uuid.uuid4().hex[:12]}"
            planned = self.plan(period, only_account=only_account)
            started_at = self._now_ms()
            # A one-account run is a correction, not the period's run: it leaves the run record alone.
            whole_period = only_account is None
            if only_once and whole_period and self._must_wait(period, planned):
                self._record(period, run_id, RunStatus.WAITING_FOR_FINAL_COSTS, trigger, planned, 0, started_at)
                log.info(
                    "billing run waiting for final costs",
                    extra={
                        "runId": run_id,
                        "period": period.label,
                        "costRequests": planned.cost_requests,
                        "deadlineDay": self._deadline_day,
                    },
                )
                return dataclasses.replace(planned, run_id=run_id, dry_run=False, waiting_for_final_costs=True)
            if whole_period:
                self._record(period, run_id, RunStatus.ENQUEUING, trigger, planned, 0, started_at)
            # Ten jobs to a request: 100,000 accounts are 10,000 SQS calls, well inside the lease.
            for start in range(0, len(planned.plans), ENQUEUE_BATCH):
                self._jobs.send_batch(
                    [
                        OutgoingMessage(plan_to_message(plan, run_id), {"runId": run_id, "invoiceId": plan.invoice_id})
                        for plan in planned.plans[start : start + ENQUEUE_BATCH]
                    ]
                )
            if whole_period:
                self._record(period, run_id, RunStatus.ENQUEUED, trigger, planned, len(planned.plans), started_at)
            log.info(
                "billing run enqueued",
                extra={
                    "runId": run_id,
                    "period": period.label,
                    "jobs": len(planned.plans),
                    "skipped": len(planned.skipped),
                    "costRequests": planned.cost_requests,
                    "trigger": trigger,
                },
            )
            if planned.costs_estimated:
                log.warning(
                    "billing run bills estimated costs",
                    extra={"runId": run_id, "period": period.label, "trigger": trigger},
                )
            return BillingRunResult(
                run_id=run_id,
                period=period,
                plans=planned.plans,
                skipped=planned.skipped,
                cost_requests=planned.cost_requests,
                enqueued=len(planned.plans),
                costs_estimated=planned.costs_estimated,
            )
        finally:
            self._leases.release_lease(name, owner)

    def run_record(self, period: Period) -> BillingRunRecord | None:
        """The period's run record (status, counts, times), or ``None`` if it never ran."""
        return self._runs.get(period)

    # --- helpers ---------------------------------------------------------------------------------

    def _policy_for(self, period: Period, cost_currency: str) -> BillingPolicy:
        """The policy with the period's own exchange rate (stored once; fixed from the ECB feed if not yet)."""
        if self._rates is None:
            return self._policy
        try:
            return self._rates.policy_for(self._policy, period, cost_currency)
        except (RateNotPublished, ExchangeRateUnavailable) as missing:
            raise RateNotAvailable(f"no exchange rate for {period.label} yet: {missing}") from None

    def _must_wait(self, period: Period, planned: BillingRunResult) -> bool:
        """Whether the cron's run should wait: costs still estimated and the deadline day not reached."""
        if not self._wait_for_final or not planned.costs_estimated:
            return False
        today = datetime.fromtimestamp(self._clock(), UTC).date()
        deadline = period.end.replace(day=self._deadline_day)
        return today < deadline

    def _stripe_tax_accounts(self, accounts: Iterable[Account]) -> frozenset[str]:
        """The accounts whose invoices Stripe Tax computes the VAT of: no negative line can be billed to them."""
        tax = self._tax
        if tax is None or tax.mode is not TaxMode.STRIPE_TAX:
            return frozenset()
        return frozenset(a.account_id for a in accounts if tax.treatment_for(a.country, a.vat_id).taxed)

    def _require_ended(self, period: Period) -> None:
        # The invoice id is fixed per account and month: billing a month early would spend it on a
        # partial month, and the rest of its costs could never be billed.
        now = datetime.fromtimestamp(self._clock(), UTC)
        if not period.has_ended(now):
            raise PeriodNotEnded(
                f"{period.label} has not ended yet (UTC); it can be billed from {period.end.isoformat()} on"
            )

    def _already_enqueued(self, period: Period) -> bool:
        record = self.run_record(period)
        return record is not None and record.status is RunStatus.ENQUEUED

    def _accounts_to_bill(self, only_account: str | None) -> tuple[list[Account], list[SkippedAccount]]:
        entries: Iterable[Account | InvalidStoredRecord]
        if only_account is not None:
            try:
                account = self._accounts.get(only_account)
            except InvalidStoredRecord as invalid:
                raise BillingRunRefused(f"account {only_account} cannot be billed: {invalid}") from None
            if account is None:
                raise BillingRunRefused(f"no account {only_account}")
            entries = [account]
        else:
            entries = self._accounts.list_accounts()
        accounts, skipped = [], []
        for entry in entries:
            if isinstance(entry, InvalidStoredRecord):
                # One misconfigured account must not stop everyone else's invoice.
                account_id = str(entry.record_id)
                log.error("account skipped", extra={"userId": account_id, "reason": str(entry)})
                skipped.append(SkippedAccount(account_id, str(entry)))
            elif entry.disabled:
                # Disabled by the operator: not billed, nothing is lost (its history stays).
                skipped.append(SkippedAccount(entry.account_id, "disabled by the operator"))
            else:
                accounts.append(entry)
        return accounts, skipped

    def _with_cost_scope(
        self, accounts: list[Account], skipped: list[SkippedAccount], only_account: str | None
    ) -> tuple[list[Account], list[SkippedAccount]]:
        """The accounts whose costs can be told apart under the run's attribution, and those skipped.

        Attributed by service only, the report holds the whole payer account's costs and cannot be split,
        so it may bill one account only. Attributed by linked account or tag, an account without a
        ``costScope`` would be billed every account's costs.
        """
        if not self._attribution.splits:
            # A one-account run must not bill the whole payer to one account of several either.
            account_ids = (
                [a.account_id for a in accounts] + [s.account_id for s in skipped]
                if only_account is None
                else [_account_id(entry) for entry in self._accounts.list_accounts()]
            )
            if len(account_ids) > 1:
                shown = ", ".join(sorted(account_ids)[:10]) + (" ..." if len(account_ids) > 10 else "")
                raise ConfigurationError(
                    f"costs are attributed by service only (the whole payer account) but {len(account_ids)} "
                    f"accounts exist ({shown}); the payer's costs cannot be split between them: attribute costs "
                    "by linked account or tag (COST_GROUP_BY) and set each account's costScope"
                )
            return accounts, []
        scoped, unscoped = [], []
        for account in accounts:
            if account.cost_scope is not None:
                scoped.append(account)
                continue
            reason = (
                f"no costScope, but costs are attributed by {self._attribution}: it would be billed the whole "
                "payer account's costs; set the account's costScope"
            )
            log.error("account skipped", extra={"userId": account.account_id, "reason": reason})
            unscoped.append(SkippedAccount(account.account_id, reason))
        return scoped, unscoped

    def _record(
        self,
        period: Period,
        run_id: str,
        status: RunStatus,
        trigger: str,
        planned: BillingRunResult,
        enqueued: int,
        started_at: int,
    ) -> None:
        self._runs.put(
            BillingRunRecord(
                period=period,
                run_id=run_id,
                status=status,
                trigger=trigger,
                accounts=len(planned.plans),
                skipped=len(planned.skipped),
                enqueued=enqueued,
                cost_requests=planned.cost_requests,
                started_at=started_at,
                updated_at=self._now_ms(),
                costs_estimated=planned.costs_estimated,
                skipped_reasons={s.account_id: s.reason for s in planned.skipped[:MAX_SKIPPED_KEPT]},
            ),
            ttl_seconds=RUN_RECORD_DAYS * 24 * 3600,
        )

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _account_id(entry: Account | InvalidStoredRecord) -> str:
    return str(entry.record_id) if isinstance(entry, InvalidStoredRecord) else entry.account_id
