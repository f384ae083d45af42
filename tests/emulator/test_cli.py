"""``python -m stripe_emulator`` as its own process: serves the API, logs JSON lines, exits on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from tests.support.emulator import wait_for

SMOKE_SCRIPT = Path(__file__).with_name("sdk_smoke.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=0.5).status_code == 200
    except requests.ConnectionError:
        return False


def test_cli_process_runs_the_full_and_decline_flows_for_a_plain_sdk_script():
    port = _free_port()
    secret = "sk_test_cli_0123456789"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stripe_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--secret-key",
            secret,
            "--publishable-key",
            "pk_test_cli",
            "--webhook-retry-schedule",
            "0.05,0.1",
            "--sepa-settle-delay",
            "0.1",
            "--seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(url) or process.poll() is not None, timeout=15)
        assert process.poll() is None, process.stderr.read()
        smoke = subprocess.run(
            [sys.executable, str(SMOKE_SCRIPT), "--api-base", url, "--api-key", secret],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        summary = json.loads(smoke.stdout.strip().splitlines()[-1])
        assert summary["full_flow"] == "paid" and summary["decline_flow"] == "card_declined"
        assert summary["verified_webhooks"] >= 2 and summary["bad_signatures"] == 0
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    requests_logged = [line for line in lines if "route" in line]
    assert any(line["route"] == "POST /v1/invoices/{id}/finalize" for line in requests_logged)
    assert secret not in stderr and "4242424242424242" not in stderr
    assert lines[-1]["msg"] == "stopped"
