"""The scheduler-worker process on the local stack: it keeps its heartbeat file fresh and removes it on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from local_stack.environment import AWS_TEST_CREDENTIALS, service_environment
from tests.support.observe import waiting_messages

STARTUP_TIMEOUT_SECONDS = 60


def _worker_environment(stack, heartbeat_file) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONUNBUFFERED": "1",
        **AWS_TEST_CREDENTIALS,
        "AWS_REGION": stack.info["region"],
        "AWS_ENDPOINT_URL": stack.info["aws_endpoint"],
        "NO_PROXY": "127.0.0.1,localhost",
        **service_environment(stack.info),
        "WORKER_HEARTBEAT_FILE": str(heartbeat_file),
    }


HEALTHCHECK = Path(__file__).resolve().parents[2] / "deploy" / "healthcheck.py"


def test_worker_touches_its_heartbeat_file_while_running_and_removes_it_on_sigterm(stack, tmp_path):
    heartbeat_file = tmp_path / "scheduler-worker.heartbeat"
    log_path = tmp_path / "scheduler-worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "scheduler_worker"],
            env=_worker_environment(stack, heartbeat_file),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not heartbeat_file.exists() and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert heartbeat_file.exists(), log_path.read_text()
        # The container's own health check accepts it.
        health = subprocess.run(
            [sys.executable, str(HEALTHCHECK), "--heartbeat", str(heartbeat_file), "--max-age", "120"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert health.returncode == 0, health.stdout + health.stderr

        worker.send_signal(signal.SIGTERM)
        # QUEUE_WAIT_SECONDS=2 on the local stack: the consumers' long polls end, and the worker with them.
        exit_code = worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    output = log_path.read_text()
    assert exit_code == 0, output
    assert '"worker stopped"' in output
    assert '"queueWaitSeconds": 2' in output
    assert not heartbeat_file.exists()


def test_a_message_is_kept_hidden_while_the_worker_handles_it_and_is_back_soon_after_the_worker_dies(stack, tmp_path):
    """A worker process stuck on a stalled Stripe keeps its message hidden past the 30 s visibility by
    extending it; SIGKILLed, it stops extending, and the message is visible again within that visibility."""
    import socket
    import threading

    from billing_core.adapters.sqs import SqsMessageQueue
    from billing_core.use_cases.receive_webhook import claim_check
    from tests.support.stripe_events import aws_client, create_queue_pair, wait_for

    sqs = aws_client(stack, "sqs")
    suffix = os.urandom(4).hex()
    events_url = create_queue_pair(stack, f"worker-visibility-events-{suffix}")
    jobs_url = create_queue_pair(stack, f"worker-visibility-jobs-{suffix}")
    black_hole = socket.socket()  # a Stripe that accepts connections and never answers
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(16)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: [held.append(black_hole.accept()[0]) for _ in range(16)], daemon=True).start()
    environment = {
        **_worker_environment(stack, tmp_path / "heartbeat"),
        "STRIPE_EVENTS_QUEUE_URL": events_url,
        "BILLING_JOBS_QUEUE_URL": jobs_url,
        "STRIPE_API_BASE": f"http://127.0.0.1:{black_hole.getsockname()[1]}",
    }

    def counts() -> tuple[int, int]:
        attributes = sqs.get_queue_attributes(
            QueueUrl=events_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

    log_path = tmp_path / "scheduler-worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "scheduler_worker"], env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        # A claim check: the worker must read the event from Stripe, which never answers.
        SqsMessageQueue(sqs, events_url).send(claim_check("evt_stalled", "invoice.paid"), {"claimCheck": "stripe"})
        wait_for(lambda: counts() == (0, 1), timeout=60, what="the worker to take the message")
        taken = time.monotonic()
        time.sleep(40)  # past the 30 s visibility it was received with
        assert counts() == (0, 1), log_path.read_text()  # still hidden: the worker extended it
        assert time.monotonic() - taken > 30

        worker.kill()
        worker.wait(timeout=10)
        killed = time.monotonic()
        wait_for(lambda: counts()[0] == 1, timeout=60, what="the dead worker's message visible again")
        back_after = time.monotonic() - killed
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        black_hole.close()
        for connection in held:
            connection.close()
        for url in (events_url, jobs_url):
            for queue_url in (url, url + "-dlq"):
                sqs.delete_queue(QueueUrl=queue_url)

    assert back_after <= 35, back_after  # the short visibility, not the 300 s a job message had before


class _GatedStripe:
    """A TCP proxy to Stripe that holds back the first request whose line has ``marker`` until ``gate`` opens."""

    def __init__(self, target: str, marker: bytes) -> None:
        import socket
        import threading

        host, port = target.removeprefix("http://").rstrip("/").split(":")
        self._target = (host, int(port))
        self._marker = marker
        self.arrived, self.gate = threading.Event(), threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.gate.set()
        self._listener.close()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pair, args=(client,), daemon=True).start()

    def _pair(self, client) -> None:
        import socket
        import threading

        upstream = socket.create_connection(self._target)
        threading.Thread(target=self._copy, args=(upstream, client, False), daemon=True).start()
        self._copy(client, upstream, True)

    def _copy(self, source, sink, to_stripe: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if to_stripe and self._marker in chunk and not self.arrived.is_set():
                    self.arrived.set()
                    self.gate.wait(300)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass


def test_a_worker_process_frozen_past_its_visibility_wakes_without_moving_the_invoice_back(clean_stack, tmp_path):
    """Worker A is SIGSTOPped while its add-lines request is on the way to Stripe. Its job message comes
    back after the 30 s visibility; worker B takes it, adds the lines, finalizes, and Stripe charges. Then
    A's request reaches Stripe (a replay of B's under the same idempotency key) and A is SIGCONTed."""
    import dataclasses

    from billing_core import resources
    from billing_core.adapters.sqs import SqsMessageQueue
    from billing_core.domain.account_profile import PostalAddress
    from billing_core.domain.invoice_plan import invoice_id_for
    from billing_core.use_cases.invoice_messages import plan_to_message
    from local_stack.demo import worker_services
    from tests.integration.test_billing_run_resume import lines_of, new_account, seed_plan, stripe_objects
    from tests.support.stripe_events import aws_client, create_queue_pair, wait_for

    stack = clean_stack
    services = worker_services(stack)
    account_id = new_account(stack, services)
    # A complete buyer (§14 UStG: name and address), so the e-invoice step has nothing to complain of either.
    services.accounts.put(
        dataclasses.replace(
            services.accounts.get(account_id),
            name="Frost GmbH",
            country="DE",
            address=PostalAddress("Eisweg 1", "10115", "Berlin"),
        )
    )
    plan = seed_plan(stack, services, account_id)
    invoice_id = invoice_id_for(plan.period, account_id)
    sqs = aws_client(stack, "sqs")
    suffix = os.urandom(4).hex()
    jobs_url = create_queue_pair(stack, f"frozen-jobs-{suffix}", resources.BILLING_JOBS)
    events_url = create_queue_pair(stack, f"frozen-events-{suffix}")
    jobs = SqsMessageQueue(sqs, jobs_url)
    gated = _GatedStripe(stack.info["stripe_api_base"], b"/add_lines")
    environment = {
        **_worker_environment(stack, tmp_path / "heartbeat"),
        "BILLING_JOBS_QUEUE_URL": jobs_url,
        "STRIPE_EVENTS_QUEUE_URL": events_url,
        "WORKER_THREADS": "1",
    }

    def start(name: str, stripe_base: str) -> tuple[subprocess.Popen, Path]:
        log_path = tmp_path / f"worker-{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "scheduler_worker"],
                env={**environment, "STRIPE_API_BASE": stripe_base},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return process, log_path

    def record():
        return services.invoices.get(account_id, invoice_id)

    worker_a, log_a = start("a", gated.url)
    worker_b = None
    try:
        jobs.send(plan_to_message(plan, "run-frozen"))
        assert gated.arrived.wait(90), log_a.read_text()
        os.kill(worker_a.pid, signal.SIGSTOP)  # frozen, its visibility extensions with it
        frozen_at = time.monotonic()

        worker_b, log_b = start("b", stack.info["stripe_api_base"])
        wait_for(
            lambda: getattr(getattr(record(), "stripe", None), "finalized_at", None),
            timeout=120,
            interval=0.5,
            what="worker B to finish the job A froze in",
        )
        assert time.monotonic() - frozen_at > 30  # B only got it once A's visibility had run out
        wait_for(
            lambda: record().status == "paid",
            timeout=60,
            interval=0.5,
            what="Stripe's charge applied (invoice.paid through the stack's receiver and worker)",
        )
        before = record()
        worker_b.send_signal(signal.SIGTERM)
        worker_b.wait(timeout=60)

        gated.gate.set()  # A's add-lines request reaches Stripe now, while A is still frozen
        time.sleep(1)
        os.kill(worker_a.pid, signal.SIGCONT)
        wait_for(
            lambda: '"invoice job done"' in log_a.read_text(),
            timeout=90,
            interval=0.5,
            what="worker A to finish its job after it woke",
        )
        worker_a.send_signal(signal.SIGTERM)
        worker_a.wait(timeout=60)
    finally:
        for process in (worker_a, worker_b):
            if process is not None and process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.kill()
                process.wait()
        gated.close()

    after = record()
    assert after.status == "paid" and after.stripe.lines_added == before.stripe.lines_added == frozenset(
        {"base-fee", "aws"}
    )
    assert (after.stripe.finalized_at, after.payment.paid_at) == (before.stripe.finalized_at, before.payment.paid_at)
    assert after.stripe.finalized_at <= after.payment.paid_at
    errors = [line for line in log_a.read_text().splitlines() if '"level": "ERROR"' in line]
    assert errors == [], errors
    # A read the record again when it woke, found B's finalization, and did not finalize a second time.
    assert '"invoice finalized by another attempt while this one was away"' in log_a.read_text()
    assert stripe_objects(stack)["invoice"] == 1 and stripe_objects(stack)["invoiceitem"] == 2
    assert lines_of(stack, after.stripe.invoice_id) == [("Monatliche Grundgebühr", 2000), (plan.aws_description, 1774)]
    assert jobs.dead_letter_depth() == 0 and waiting_messages(jobs) == 0
