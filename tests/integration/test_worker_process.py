"""The scheduler-worker process on the local stack: it keeps its heartbeat file fresh and removes it on SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from local_stack.environment import AWS_TEST_CREDENTIALS, service_environment

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
        worker = subprocess.Popen([sys.executable, "-m", "scheduler_worker"],
                                  env=_worker_environment(stack, heartbeat_file),
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not heartbeat_file.exists() and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert heartbeat_file.exists(), log_path.read_text()
        # The container's own health check accepts it.
        health = subprocess.run(
            [sys.executable, str(HEALTHCHECK), "--heartbeat", str(heartbeat_file), "--max-age", "120"],
            capture_output=True, text=True, timeout=30,
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


def test_a_message_is_kept_hidden_while_the_worker_handles_it_and_is_back_soon_after_the_worker_dies(
    stack, tmp_path
):
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
    environment = {**_worker_environment(stack, tmp_path / "heartbeat"), "STRIPE_EVENTS_QUEUE_URL": events_url,
                   "BILLING_JOBS_QUEUE_URL": jobs_url,
                   "STRIPE_API_BASE": f"http://127.0.0.1:{black_hole.getsockname()[1]}"}

    def counts() -> tuple[int, int]:
        attributes = sqs.get_queue_attributes(
            QueueUrl=events_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

    log_path = tmp_path / "scheduler-worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "scheduler_worker"], env=environment,
                                  stdout=log, stderr=subprocess.STDOUT)
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
