"""Command line: ``python -m stripe_emulator --host 127.0.0.1 --port 12111 [knobs]``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from stripe_emulator.app import create_app
from stripe_emulator.config import AUTOMATIC_TAX_ROUNDINGS, EmulatorConfig
from stripe_emulator.errors import StripeError
from stripe_emulator.server import make_http_server


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.startswith("{"):
            return message
        return json.dumps({"level": record.levelname.lower(), "logger": record.name, "msg": message})


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The CLI flags; every knob of EmulatorConfig has one."""
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(prog="python -m stripe_emulator", description="Stateful Stripe API emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111, help="0 picks a free port (printed on stderr)")
    parser.add_argument("--secret-key", default=defaults.secret_key)
    parser.add_argument("--publishable-key", default=defaults.publishable_key)
    parser.add_argument("--public-url", default=None, help="base of hosted invoice URLs (default: request host)")
    parser.add_argument("--account-country", default=defaults.account_country)
    parser.add_argument("--default-currency", default=defaults.default_currency)
    parser.add_argument(
        "--webhook-retry-schedule",
        default=",".join(str(s) for s in defaults.webhook_retry_schedule),
        help="comma-separated seconds between delivery attempts",
    )
    parser.add_argument("--webhook-max-attempts", type=int, default=defaults.webhook_max_attempts)
    parser.add_argument("--webhook-timeout", type=float, default=defaults.webhook_timeout)
    parser.add_argument("--webhook-workers", type=int, default=defaults.webhook_workers)
    parser.add_argument("--auto-charge-delay", type=float, default=defaults.auto_charge_delay)
    parser.add_argument("--sepa-settle-delay", type=float, default=defaults.sepa_settle_delay)
    parser.add_argument("--payment-retry-interval", type=float, default=defaults.payment_retry_interval)
    parser.add_argument("--payment-max-attempts", type=int, default=defaults.payment_max_attempts)
    parser.add_argument("--duplicate-deliveries", type=int, default=0, help="extra copies of every delivery")
    parser.add_argument("--duplicate-probability", type=float, default=0.0)
    parser.add_argument("--reorder-window", type=float, default=0.0, help="seconds of random extra delay per delivery")
    parser.add_argument("--delivery-delay", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=float, default=0.0, help="API requests per second (0 = unlimited)")
    parser.add_argument("--fault-next-n", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument(
        "--fault-after-execution-next-n",
        type=int,
        default=0,
        help="the next N requests execute, then answer 500 with Stripe-Should-Retry: false",
    )
    parser.add_argument(
        "--finalization-failures-next-n",
        type=int,
        default=0,
        help="the next N finalizations fail (invoice.finalization_failed)",
    )
    parser.add_argument(
        "--automatic-tax-rounding",
        choices=AUTOMATIC_TAX_ROUNDINGS,
        default=defaults.automatic_tax_rounding,
        help="Stripe Tax model: round once per invoice (Stripe) or per line",
    )
    parser.add_argument(
        "--no-check-contract",
        dest="check_contract",
        action="store_false",
        help="do not check answers and events against the pinned SDK's declarations",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--idempotency-ttl", type=float, default=defaults.idempotency_ttl)
    parser.add_argument("--quiet", action="store_true", help="no request log")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """An EmulatorConfig from parsed flags."""
    config = EmulatorConfig()
    values = {k: v for k, v in vars(args).items() if k not in ("host", "port", "quiet")}
    values["log_requests"] = not args.quiet
    config.update(values)
    return config


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM / SIGINT, then stop cleanly."""
    args = parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLines())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        config = config_from_args(args)
    except StripeError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    app = create_app(config)
    server = make_http_server(app, args.host, args.port)
    url = f"http://{args.host}:{server.server_port}"

    def stop(signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever to return, so it must run outside the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger("stripe_emulator").info(json.dumps({"msg": "listening", "url": url}))
    try:
        server.serve_forever()
    finally:
        server.server_close()
        app.close()
        logging.getLogger("stripe_emulator").info(json.dumps({"msg": "stopped"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
