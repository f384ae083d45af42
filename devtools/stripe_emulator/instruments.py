"""Stripe's test cards and IBANs and what each does, and PaymentMethods built from card details or an IBAN."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from stripe_emulator.errors import CardError, ParameterError
from stripe_emulator.objects import empty_address, new_id


@dataclass(frozen=True)
class TestInstrument:
    """What a test card or IBAN does: at setup/attach, and when charged off-session."""

    setup: str = "succeeds"  # "succeeds" | "declines"
    # "succeeds" | "declines" | "requires_action" | "processing_then_succeeds" | "processing_then_fails"
    charge: str = "succeeds"
    decline_code: str = "generic_decline"


CARD_BEHAVIOUR = {
    "4000000000000341": TestInstrument(charge="declines"),
    "4000002760003184": TestInstrument(charge="requires_action"),
    "4000000000000002": TestInstrument(setup="declines", charge="declines"),
    "4000000000009995": TestInstrument(setup="declines", charge="declines", decline_code="insufficient_funds"),
}
IBAN_BEHAVIOUR = {
    "DE89370400440532013000": TestInstrument(charge="processing_then_succeeds"),
    "DE62370400440532013001": TestInstrument(charge="processing_then_fails", decline_code="insufficient_funds"),
}
# Stripe's test PaymentMethod ids; each use creates a fresh PaymentMethod, as Stripe does.
TEST_PAYMENT_METHODS: dict[str, dict[str, Any]] = {
    "pm_card_visa": {"type": "card", "card": {"number": "4242424242424242"}},
    "pm_card_mastercard": {"type": "card", "card": {"number": "5555555555554444"}},
    "pm_card_amex": {"type": "card", "card": {"number": "378282246310005"}},
    "pm_card_chargeCustomerFail": {"type": "card", "card": {"number": "4000000000000341"}},
    "pm_card_authenticationRequired": {"type": "card", "card": {"number": "4000002760003184"}},
    "pm_card_chargeDeclined": {"type": "card", "card": {"number": "4000000000000002"}},
    "pm_card_visa_chargeDeclined": {"type": "card", "card": {"number": "4000000000000002"}},
    "pm_card_chargeDeclinedInsufficientFunds": {"type": "card", "card": {"number": "4000000000009995"}},
    "pm_sepaDebit": {"type": "sepa_debit", "sepa_debit": {"iban": "DE89370400440532013000"}},
    "pm_sepaDebit_fail": {"type": "sepa_debit", "sepa_debit": {"iban": "DE62370400440532013001"}},
}


def behaviour_of(payment_method: dict[str, Any], secret: str) -> TestInstrument:
    """How a payment method behaves, given the full number / IBAN it was created from."""
    if payment_method["type"] == "sepa_debit":
        return IBAN_BEHAVIOUR.get(secret, TestInstrument(charge="processing_then_succeeds"))
    return CARD_BEHAVIOUR.get(secret, TestInstrument())


def _luhn_ok(number: str) -> bool:
    digits = [int(d) for d in number]
    for i in range(len(digits) - 2, -1, -2):
        digits[i] = digits[i] * 2 - 9 if digits[i] * 2 > 9 else digits[i] * 2
    return sum(digits) % 10 == 0


def _card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in ("34", "37"):
        return "amex"
    if 51 <= int(number[:2]) <= 55 or 2221 <= int(number[:4]) <= 2720:
        return "mastercard"
    if number.startswith(("6011", "65")):
        return "discover"
    return "unknown"


def _iban_ok(iban: str) -> bool:
    if not (15 <= len(iban) <= 34) or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    try:
        return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
    except ValueError:
        return False


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def build_payment_method(data: dict[str, Any], created: int) -> tuple[dict[str, Any], str]:
    """A PaymentMethod from raw card details or an IBAN, and that number / IBAN (never rendered)."""
    pm_type = data.get("type")
    if pm_type not in ("card", "sepa_debit"):
        raise ParameterError("Missing required param: type.", code="parameter_missing", param="type")
    pm_id = new_id("pm")
    billing = data.get("billing_details") or {}
    obj: dict[str, Any] = {
        "id": pm_id,
        "object": "payment_method",
        "allow_redisplay": data.get("allow_redisplay") or "unspecified",
        "billing_details": {
            "address": {**empty_address(), **(billing.get("address") or {})},
            "email": billing.get("email"),
            "name": billing.get("name"),
            "phone": billing.get("phone"),
            "tax_id": billing.get("tax_id"),
        },
        "created": created,
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": dict(data.get("metadata") or {}),
        "type": pm_type,
    }
    if data.get("radar_options"):  # Stripe sends radar_options only when the payment method was given one
        obj["radar_options"] = {"session": data["radar_options"].get("session")}
    if pm_type == "card":
        card = data.get("card") or {}
        number = (card.get("number") or "").replace(" ", "")
        if card.get("token"):
            raise ParameterError(
                "Card tokens are not supported by the emulator; send card[number].", param="card[token]"
            )
        if not number:
            raise ParameterError(
                "Missing required param: card[number].", code="parameter_missing", param="card[number]"
            )
        if not number.isdigit() or not 12 <= len(number) <= 19 or not _luhn_ok(number):
            raise CardError("Your card number is incorrect.", code="incorrect_number", param="number")
        exp_month = card.get("exp_month", 12)
        exp_year = card.get("exp_year", 2034)
        if not 1 <= exp_month <= 12:
            raise CardError("Your card's expiration month is invalid.", code="invalid_expiry_month", param="exp_month")
        if exp_year < 100:
            exp_year += 2000
        if exp_year < 2025:
            raise CardError("Your card's expiration year is invalid.", code="invalid_expiry_year", param="exp_year")
        brand = _card_brand(number)
        obj["card"] = {
            "brand": brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass" if card.get("cvc") else None,
            },
            "country": "US",
            "description": None,
            "display_brand": brand,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": _fingerprint(number),
            "funding": "credit",
            "generated_from": None,
            "iin": None,
            "issuer": None,
            "last4": number[-4:],
            "networks": {"available": [brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        }
        secret = number
    else:
        iban = ((data.get("sepa_debit") or {}).get("iban") or "").replace(" ", "").upper()
        if not iban:
            raise ParameterError(
                "Missing required param: sepa_debit[iban].", code="parameter_missing", param="sepa_debit[iban]"
            )
        if not _iban_ok(iban):
            raise ParameterError(
                "The IBAN you provided appears to be invalid.",
                code="payment_method_invalid_parameter",
                param="sepa_debit[iban]",
            )
        obj["sepa_debit"] = {
            "bank_code": iban[4:12] if iban.startswith("DE") else iban[4:8],
            "branch_code": None,
            "country": iban[:2],
            "fingerprint": _fingerprint(iban),
            "generated_from": {"charge": None, "setup_attempt": None},
            "last4": iban[-4:],
        }
        secret = iban
    return obj, secret
