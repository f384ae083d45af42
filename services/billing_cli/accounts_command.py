"""``billing accounts ...`` and ``billing audit``: the operator's customer accounts and the log of its actions.

    billing accounts create --name NAME --email EMAIL [--id ID] [--cost-scope S] [--base-fee 25.00]
                            [--language de|en] [--country DE] [--vat-id DE...]
                            [--address LINE --postal-code P --city C]
    billing accounts list
    billing accounts show ACCOUNT
    billing accounts update ACCOUNT [the fields of create] [--clear-cost-scope] [--clear-base-fee] [--reason R]
    billing accounts disable ACCOUNT --reason R
    billing accounts enable ACCOUNT [--reason R]
    billing accounts invite ACCOUNT --email EMAIL [--reason R]
    billing audit [--account ACCOUNT] [--limit N]

Creating an account creates its Stripe customer (name, e-mail, address, preferred locale) once;
every change is written to the audit log with who made it.

What is printed is safe for a terminal: a control, bidirectional-control or other unprintable
character in a stored value (one written before the fields were checked for them) is shown as its
escape (``\\u202e``), so it cannot reorder or hide a row.
"""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from billing_cli.run_command import print_table
from billing_core.bootstrap import WorkerUseCases
from billing_core.domain.account_profile import (
    InvalidAccountField,
)
from billing_core.domain.records import Account
from billing_core.errors import BillingError, InvalidStoredRecord, SettingsError
from billing_core.use_cases.operator_accounts import AccountExists, AccountNotFound, AccountProfile

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``accounts`` and ``audit`` to the ``billing`` command line."""
    parser = subcommands.add_parser(
        "accounts",
        help="create, list, change, disable customer accounts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True)

    create = actions.add_parser("create", help="a new account and its Stripe customer")
    create.add_argument("--id", dest="account_id", help="the account id (default: acct_<random>)")
    _profile_arguments(create, required=True)
    create.add_argument("--reason", help="why (kept in the audit log)")
    create.set_defaults(handler=create_command)

    actions.add_parser("list", help="every account").set_defaults(handler=list_command)

    show = actions.add_parser("show", help="one account")
    show.add_argument("account")
    show.set_defaults(handler=show_command)

    update = actions.add_parser("update", help="change an account's fields")
    update.add_argument("account")
    _profile_arguments(update, required=False)
    update.add_argument("--clear-cost-scope", action="store_true", help="bill the whole payer account again")
    update.add_argument("--clear-base-fee", action="store_true", help="back to the default base fee")
    update.add_argument("--reason", help="why (kept in the audit log)")
    update.set_defaults(handler=update_command)

    disable = actions.add_parser("disable", help="stop billing an account (its history stays)")
    disable.add_argument("account")
    disable.add_argument("--reason", required=True, help="why (kept in the audit log)")
    disable.set_defaults(handler=disable_command)

    enable = actions.add_parser("enable", help="bill a disabled account again")
    enable.add_argument("account")
    enable.add_argument("--reason", help="why (kept in the audit log)")
    enable.set_defaults(handler=enable_command)

    invite = actions.add_parser("invite", help="make someone an admin of an account (a Cognito user)")
    invite.add_argument("account")
    invite.add_argument("--email", required=True)
    invite.add_argument("--reason", help="why (kept in the audit log)")
    invite.set_defaults(handler=invite_command)

    audit = subcommands.add_parser("audit", help="the log of every operator action, newest first")
    audit.add_argument("--account", help="only this account's")
    audit.add_argument("--limit", type=int, default=50, help="how many entries (default 50)")
    audit.set_defaults(handler=audit_command)


def _profile_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--name", required=required, help="the customer's legal name")
    parser.add_argument("--email", required=required, help="where Stripe sends invoices and receipts")
    parser.add_argument("--cost-scope", help="linked AWS account id (LINKED_ACCOUNT) or tag value (TAG:<key>)")
    parser.add_argument("--base-fee", help="monthly base fee in EUR, e.g. 25.00 (default: BASE_FEE)")
    parser.add_argument("--language", help="de or en: invoice texts and Stripe's e-mails")
    parser.add_argument("--country", help="ISO 3166-1 alpha-2, e.g. DE")
    parser.add_argument("--vat-id", help="the customer's EU VAT id (USt-IdNr), e.g. DE136695976 (set on create)")
    parser.add_argument(
        "--buyer-reference", help="the e-invoice's buyer reference: the customer's Leitweg-ID or order reference"
    )
    parser.add_argument(
        "--invoice-email",
        action="append",
        help="who gets the invoices and credit notes by e-mail (repeat for several; default: --email)",
    )
    parser.add_argument("--address", help="street and number")
    parser.add_argument("--postal-code")
    parser.add_argument("--city")


def operator_name() -> str:
    """Who runs the command, for the audit log: ``cli:<user>@<host>``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def _profile(args: argparse.Namespace) -> AccountProfile:
    """The profile the arguments give, each value validated (``InvalidAccountField``)."""
    parts = (args.address, args.postal_code, args.city)
    if any(parts) and not all(parts):
        raise InvalidAccountField("address", "give --address, --postal-code and --city together")
    return AccountProfile.from_text(
        name=args.name,
        email=args.email,
        cost_scope=args.cost_scope,
        base_fee=args.base_fee,
        language=args.language,
        country=args.country,
        address=parts if all(parts) else None,
        vat_id=args.vat_id,
        buyer_reference=args.buyer_reference,
        invoice_emails=args.invoice_email,
    )


def _run(action: Callable[[], int], err: TextIO, what: str) -> int:
    try:
        return action()
    except InvalidAccountField as invalid:
        print(f"billing accounts {what}: {shown(str(invalid))}", file=err)
        return EXIT_INVALID
    except (AccountNotFound, AccountExists, SettingsError) as refused:
        print(f"billing accounts {what}: {shown(str(refused))}", file=err)
        return EXIT_FAILED
    except BillingError as error:
        print(f"billing accounts {what} failed: {type(error).__name__}: {shown(str(error))}", file=err)
        return EXIT_FAILED


def create_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Create the account and its Stripe customer; prints the account."""

    def action() -> int:
        account = use_cases.operator_accounts.create(
            _profile(args), actor=operator_name(), account_id=args.account_id, reason=args.reason
        )
        _print_account(account, out)
        return EXIT_OK

    return _run(action, err, "create")


def list_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """One line per account; an unreadable account is listed with its problem (exit 1)."""

    def action() -> int:
        rows, broken = [], 0
        for entry in use_cases.operator_accounts.all_accounts():
            if isinstance(entry, InvalidStoredRecord):
                broken += 1
                rows.append([str(entry.record_id), "UNREADABLE", str(entry), "", "", ""])
                continue
            rows.append(
                [
                    entry.account_id,
                    entry.name or "",
                    entry.email or "",
                    entry.cost_scope or "(all)",
                    _base_fee(entry),
                    _state(entry),
                ]
            )
        _print_table([["account", "name", "email", "cost scope", "base fee", "state"], *sorted(rows)], out)
        return EXIT_FAILED if broken else EXIT_OK

    return _run(action, err, "list")


def show_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Every field of one account."""

    def action() -> int:
        _print_account(use_cases.operator_accounts.get(args.account), out)
        return EXIT_OK

    return _run(action, err, "show")


def update_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Change the fields given; prints the account."""

    def action() -> int:
        clear = tuple(
            name
            for name, wanted in (("cost_scope", args.clear_cost_scope), ("base_fee_override", args.clear_base_fee))
            if wanted
        )
        account = use_cases.operator_accounts.update(
            args.account, _profile(args), actor=operator_name(), reason=args.reason, clear=clear
        )
        _print_account(account, out)
        return EXIT_OK

    return _run(action, err, "update")


def disable_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Stop billing the account."""

    def action() -> int:
        _print_account(
            use_cases.operator_accounts.disable(args.account, actor=operator_name(), reason=args.reason), out
        )
        return EXIT_OK

    return _run(action, err, "disable")


def enable_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Bill the account again."""

    def action() -> int:
        _print_account(use_cases.operator_accounts.enable(args.account, actor=operator_name(), reason=args.reason), out)
        return EXIT_OK

    return _run(action, err, "enable")


def invite_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Invite the admin; on the local stack, print their temporary password (Cognito mails it in AWS)."""

    def action() -> int:
        user = use_cases.operator_accounts.invite(args.account, args.email, actor=operator_name(), reason=args.reason)
        state = "invited" if user.created else "already had a login; now an admin of this account"
        print(shown(f"{args.email}: {state} (user {user.username}, sub {user.sub})"), file=out)
        if user.temporary_password:
            print(
                f"temporary password (local stack only; change it at first sign-in): {user.temporary_password}",
                file=out,
            )
        elif user.created:
            print("Cognito e-mails the temporary password", file=out)
        return EXIT_OK

    return _run(action, err, "invite")


def audit_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """The newest operator actions as a table."""

    def action() -> int:
        entries = use_cases.operator_accounts.audit_entries(account_id=args.account, limit=args.limit)
        rows = [
            [
                _time(e.at),
                e.actor,
                e.action,
                e.account_id or "",
                "; ".join(
                    f"{k}: {e.before.get(k, '')!r} -> {e.after.get(k, '')!r}"
                    for k in sorted(set(e.before) | set(e.after))
                ),
                e.reason or "",
            ]
            for e in entries
        ]
        _print_table([["time (UTC)", "who", "action", "account", "changes", "reason"], *rows], out)
        return EXIT_OK

    return _run(action, err, "audit")


def _print_account(account: Account, out: TextIO) -> None:
    address = account.address
    rows = [
        ["account", account.account_id],
        ["name", account.name or ""],
        ["email", account.email or ""],
        ["stripe customer", account.stripe_customer_id or "(none yet)"],
        ["cost scope", account.cost_scope or "(the whole payer account)"],
        ["base fee", _base_fee(account)],
        ["language", account.language or "(default)"],
        ["country", account.country or ""],
        ["VAT id", account.vat_id or ""],
        ["buyer reference", account.buyer_reference or ""],
        ["invoice e-mails", ", ".join(account.invoice_recipients)],
        ["address", f"{address.line1}, {address.postal_code} {address.city}" if address else ""],
        [
            "payment method",
            (
                f"{account.payment_method.type} {account.payment_method.last4 or ''}".strip()
                if account.payment_method
                else "(none)"
            ),
        ],
        ["state", _state(account)],
    ]
    _print_table([["field", "value"], *rows], out)


def shown(text: str) -> str:
    """``text`` safe to print to a terminal: each unprintable character (control, bidi control, other
    format character, line separator, unassigned) as its escape: ``\\x07``, ``\\u202e``, ``\\U000e0041``."""
    return "".join(
        character if character.isprintable() else character.encode("unicode_escape").decode("ascii")
        for character in text
    )


def _print_table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """``print_table`` with every cell ``shown``: a stored value cannot reorder the terminal's row."""
    print_table([[shown(cell) for cell in row] for row in rows], out)


def _base_fee(account: Account) -> str:
    return f"{account.base_fee_override} EUR" if account.base_fee_override is not None else "(default)"


def _state(account: Account) -> str:
    return f"disabled since {_time(account.disabled_at)}" if account.disabled_at is not None else "active"


def _time(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
