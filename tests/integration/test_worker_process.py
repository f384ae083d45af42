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
