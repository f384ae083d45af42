"""Benchmarks of the monthly billing run (``make bench``; not part of ``make test``).

1. Stripe request rate: a run over 1,000 accounts against a Stripe emulator process that answers
   429 above 100 requests/s; the jobs run on ``WORKER_THREADS`` threads behind the worker's shared
   token bucket. Figures: invoices per second / (limit / 3), goal >= 0.95; Stripe requests per
   invoice, goal 3 (create draft, add lines, finalize); achieved request rate / the limit.
2. Cost Explorer requests of a run: the run's query goes through the real Cost Explorer adapter to a
   stub answering in 3 pages; figure: requests for 10 and for 1,000 accounts; goal: the page count.
3. The project's own CPU time per invoice (``time.process_time``): run + jobs with in-memory fakes
   over 10,000 accounts.
4. Scale of the run: planning and enqueueing 10,000 and 100,000 accounts (accounts and costs in
   memory, the real SQS adapter over a client that accepts every batch); figures: seconds, and SQS
   requests per 1,000 accounts (goal 100: ten jobs to a SendMessageBatch).

Each prints one JSON line.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal

import requests
import stripe

from billing_core.adapters.cost_explorer import CostExplorerCostSource
from billing_core.adapters.rate_limited_gateway import RateLimitedPaymentGateway, TokenBucket
from billing_core.adapters.stripe_gateway import StripePaymentGateway
from billing_core.domain.costs import CostAttribution, Period
from billing_core.domain.invoice_plan import BillingPolicy, FxRate
from billing_core.domain.records import Account, SavedPaymentMethod
from billing_core.ports import InvoiceRepository
from billing_core.use_cases.billing_run import BillingRun
from billing_core.use_cases.invoice_job import InvoiceJob
from billing_core.use_cases.invoice_messages import plan_from_message
from tests.support.fakes import (
    FakeAccountRepository,
    FakeInvoiceRepository,
    FakeLeases,
    FakePaymentGateway,
    FakeQueue,
    FakeRunRecords,
    FakeSecretsProvider,
)

CARD = SavedPaymentMethod("pm_card_visa", "card", "visa", "4242")
PERIOD = Period(2024, 11)
POLICY = BillingPolicy(fx=FxRate(Decimal("1.0"), "bench", date(2024, 11, 30)))
SECRET_KEY = "sk_test_bench"
EMULATOR_LIMIT = 100
CLIENT_RATE = 98  # STRIPE_MAX_REQUESTS_PER_SECOND for the run: a little under the limit
REQUESTS_PER_INVOICE = 3
WORKER_THREADS = 8
ATTRIBUTION = CostAttribution.by_account()  # several accounts need their own costs: each is one linked account
SEED = {
    "AWS Lambda": "5.2312345678",
    "Amazon Simple Storage Service": "2.1487654321",
    "Amazon CloudFront": "8.4700000001",
    "Amazon DynamoDB": "1.8899999999",
    "Tax": "0",
}


def linked_account(n: int) -> str:
    """The linked AWS account (and ``costScope``) of bench account ``n``."""
    return f"{n:012d}"


def bench_accounts(accounts: int) -> list[Account]:
    """Accounts ``acct-<n>``, each scoped to its own linked account."""
    return [Account(f"acct-{n:05d}", cost_scope=linked_account(n)) for n in range(accounts)]


class PagedCostExplorer:
    """A boto3 Cost Explorer stand-in: the seed month for each of ``accounts`` linked accounts
    (grouped by LINKED_ACCOUNT and SERVICE) in ``pages`` pages; counts calls."""

    def __init__(self, accounts: int, pages: int = 3) -> None:
        self.groups = [
            (linked_account(n), service, amount) for n in range(accounts) for service, amount in SEED.items()
        ]
        self.pages = pages
        self.calls = 0

    def get_cost_and_usage(self, **kwargs):
        self.calls += 1
        page = int(kwargs.get("NextPageToken", "0"))
        result = {
            "ResultsByTime": [
                {
                    "TimePeriod": kwargs["TimePeriod"],
                    "Estimated": False,
                    "Total": {},
                    "Groups": [
                        {"Keys": [scope, s], "Metrics": {"UnblendedCost": {"Amount": a, "Unit": "USD"}}}
                        for scope, s, a in self.groups[page :: self.pages]
                    ],
                }
            ]
        }
        if page + 1 < self.pages:
            result["NextPageToken"] = str(page + 1)
        return result


class LockedInvoices(FakeInvoiceRepository):
    """The in-memory billing table, safe for the worker threads."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def create_if_absent(self, item):
        with self._lock:
            return super().create_if_absent(item)

    def update(self, *args, **kwargs):
        with self._lock:
            return super().update(*args, **kwargs)

    def get(self, *args):
        with self._lock:
            return super().get(*args)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_emulator() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "stripe_emulator", "--port", str(port), "--secret-key", SECRET_KEY, "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                return process, url
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    process.terminate()
    raise SystemExit("emulator did not become healthy")


def _jobs(run: BillingRun, queue: FakeQueue, accounts: int) -> list:
    run.start(PERIOD, owner="bench", trigger="bench")
    messages = queue.receive(max_messages=10)
    bodies = []
    while messages:
        bodies += [m.body for m in messages]
        for m in messages:
            queue.delete(m.receipt_handle)
        messages = queue.receive(max_messages=10)
    assert len(bodies) == accounts
    return [plan_from_message(body) for body in bodies]


def measure_stripe_rate(accounts: int = 1000) -> dict:
    """The 1,000-account run against an emulator limited to 100 requests/s."""
    process, url = _start_emulator()
    try:
        client = stripe.StripeClient(SECRET_KEY, base_addresses={"api": url}, max_network_retries=0)
        repo = FakeAccountRepository()
        for account in bench_accounts(accounts):
            customer = client.v1.customers.create(
                params={
                    "email": f"{account.account_id}@example.com",
                    "payment_method": "pm_card_visa",
                    "invoice_settings": {"default_payment_method": "pm_card_visa"},
                }
            )
            repo.put(dataclasses.replace(account, stripe_customer_id=customer.id, payment_method=CARD))
        cost_explorer = PagedCostExplorer(accounts, pages=3)
        queue = FakeQueue()
        run = BillingRun(
            accounts=repo,
            costs=CostExplorerCostSource(cost_explorer),
            leases=FakeLeases(),
            runs=FakeRunRecords(),
            billing_jobs=queue,
            policy=POLICY,
            attribution=ATTRIBUTION,
        )
        plans = _jobs(run, queue, accounts)

        requests.post(
            f"{url}/_emulator/config", json={"rate_limit": EMULATOR_LIMIT, "log_requests": False}, timeout=5
        ).raise_for_status()
        before = requests.get(f"{url}/_emulator/requests", timeout=5).json()
        gateway = RateLimitedPaymentGateway(
            StripePaymentGateway(FakeSecretsProvider(secret_key=SECRET_KEY), api_base=url, max_network_retries=0),
            TokenBucket(CLIENT_RATE),
        )
        job = InvoiceJob(invoices=LockedInvoices(), accounts=repo, payments=gateway)
        started = time.perf_counter()
        with ThreadPoolExecutor(WORKER_THREADS) as pool:
            results = list(pool.map(lambda p: job.run(p[0], run_id=p[1]), plans))
        elapsed = time.perf_counter() - started
        after = requests.get(f"{url}/_emulator/requests", timeout=5).json()
        objects = requests.get(f"{url}/_emulator/objects", timeout=5).json()
    finally:
        process.terminate()
        process.wait(timeout=15)
    rejected = after["rejected"].get("rate_limited", 0) - before["rejected"].get("rate_limited", 0)
    admitted = after["total"] - before["total"] - rejected
    achieved = admitted / elapsed
    assert all(r.status == "open" for r in results) and objects["invoice"] == accounts
    return {
        "benchmark": "billing_run_stripe_rate",
        "accounts": accounts,
        "emulator_limit_per_s": EMULATOR_LIMIT,
        "client_rate_per_s": CLIENT_RATE,
        "worker_threads": WORKER_THREADS,
        "stripe_requests": admitted,
        "rate_limited_429": rejected,
        "seconds": round(elapsed, 2),
        "achieved_per_s": round(achieved, 1),
        "achieved_over_limit": round(achieved / EMULATOR_LIMIT, 3),
        "invoices_per_s": round(accounts / elapsed, 2),
        "invoices_over_limit_per_3": round(accounts / elapsed / (EMULATOR_LIMIT / REQUESTS_PER_INVOICE), 3),
        "stripe_requests_per_invoice": round(admitted / accounts, 3),
        "cost_explorer_requests": cost_explorer.calls,
        "cost_explorer_pages": cost_explorer.pages,
    }


def measure_cost_explorer_requests(accounts: int) -> int:
    """Cost Explorer requests one run makes for ``accounts`` accounts (3 pages of results)."""
    cost_explorer = PagedCostExplorer(accounts, pages=3)
    queue = FakeQueue()
    repo = FakeAccountRepository(bench_accounts(accounts))
    run = BillingRun(
        accounts=repo,
        costs=CostExplorerCostSource(cost_explorer),
        leases=FakeLeases(),
        runs=FakeRunRecords(),
        billing_jobs=queue,
        policy=POLICY,
        attribution=ATTRIBUTION,
    )
    run.start(PERIOD, owner="bench", trigger="bench")
    assert len(queue.messages) == accounts
    return cost_explorer.calls


def measure_cpu_per_invoice(accounts: int = 10_000) -> dict:
    """Process CPU time of run + jobs per invoice, everything in memory."""
    stripe_fake = FakePaymentGateway()
    repo = FakeAccountRepository()
    for account in bench_accounts(accounts):
        customer = stripe_fake.create_customer(
            account_id=account.account_id, idempotency_key=f"setup:{account.account_id}"
        )
        repo.put(dataclasses.replace(account, stripe_customer_id=customer.id, payment_method=CARD))
    invoices: InvoiceRepository = FakeInvoiceRepository()
    queue = FakeQueue()
    run = BillingRun(
        accounts=repo,
        costs=CostExplorerCostSource(PagedCostExplorer(accounts)),
        leases=FakeLeases(),
        runs=FakeRunRecords(),
        billing_jobs=queue,
        policy=POLICY,
        attribution=ATTRIBUTION,
    )
    job = InvoiceJob(invoices=invoices, accounts=repo, payments=stripe_fake)
    started = time.process_time()
    for plan, run_id in _jobs(run, queue, accounts):
        job.run(plan, run_id=run_id)
    cpu = time.process_time() - started
    return {
        "benchmark": "billing_cpu_per_invoice",
        "accounts": accounts,
        "cpu_ms_per_invoice": round(cpu * 1000 / accounts, 3),
        "cpu_seconds": round(cpu, 2),
    }


def test_stripe_request_rate_of_a_1000_account_run() -> None:
    """`make bench`: achieved Stripe rate over the emulator's 100/s limit (and CE requests of that run)."""
    result = measure_stripe_rate()
    print(json.dumps(result))
    assert result["stripe_requests_per_invoice"] == REQUESTS_PER_INVOICE


def test_cost_explorer_requests_do_not_depend_on_the_number_of_accounts() -> None:
    """`make bench`: CE requests for 10 and for 1,000 accounts."""
    small, large = measure_cost_explorer_requests(10), measure_cost_explorer_requests(1000)
    print(
        json.dumps(
            {
                "benchmark": "billing_run_cost_explorer_requests",
                "pages": 3,
                "requests_10_accounts": small,
                "requests_1000_accounts": large,
            }
        )
    )
    assert small == large == 3


def test_cpu_milliseconds_per_invoice_with_fakes() -> None:
    """`make bench`: the project's CPU time per invoice over 10,000 accounts."""
    result = measure_cpu_per_invoice()
    print(json.dumps(result))
    assert result["cpu_ms_per_invoice"] > 0


class AcceptingSqs:
    """A boto3 SQS stand-in that accepts every SendMessageBatch entry; counts calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.entries = 0

    def send_message_batch(self, *, QueueUrl, Entries):  # noqa: N803 - boto3's names
        self.calls += 1
        self.entries += len(Entries)
        return {
            "Successful": [
                {"Id": e["Id"], "MessageId": f"m{self.entries}-{e['Id']}", "MD5OfMessageBody": ""} for e in Entries
            ],
            "Failed": [],
        }


def measure_run_scale(accounts: int) -> dict:
    """Wall time of planning + enqueueing ``accounts`` accounts, and SQS requests per 1,000 accounts."""
    from billing_core.adapters.sqs import SqsMessageQueue

    sqs = AcceptingSqs()
    run = BillingRun(
        accounts=FakeAccountRepository(bench_accounts(accounts)),
        costs=CostExplorerCostSource(PagedCostExplorer(accounts, pages=max(1, accounts // 5000))),
        leases=FakeLeases(),
        runs=FakeRunRecords(),
        billing_jobs=SqsMessageQueue(sqs, "https://sqs.local/billing-jobs"),
        policy=POLICY,
        attribution=ATTRIBUTION,
    )
    started = time.perf_counter()
    result = run.start(PERIOD, owner="bench", trigger="bench")
    seconds = time.perf_counter() - started
    assert result.enqueued == accounts == sqs.entries
    return {
        "benchmark": "billing_run_scale",
        "accounts": accounts,
        "seconds": round(seconds, 2),
        "sqs_requests_per_1000_accounts": round(sqs.calls * 1000 / accounts, 1),
    }


def test_planning_and_enqueueing_10_000_and_100_000_accounts() -> None:
    """`make bench`: the run's planning + enqueue time at scale, and its SQS requests (goal 100 per 1,000)."""
    for accounts in (10_000, 100_000):
        result = measure_run_scale(accounts)
        print(json.dumps(result))
        assert result["sqs_requests_per_1000_accounts"] == 100
