"""Tax Rates: those defined through the API, and those Stripe creates itself (archived at once).

Stripe creates a TaxRate for each manual tax amount's ``tax_rate_data``, reusing one whose data match
exactly, and one for each rate Stripe Tax applies. Both kinds are archived from the start and cannot
be put on a line or an invoice by id.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from stripe_emulator import objects as build
from stripe_emulator import taxes
from stripe_emulator.errors import InvalidRequestError, ParameterError, ResourceMissingError
from stripe_emulator.store.core import RequestContext, StoreCore, merge_metadata

UPDATABLE = ("active", "country", "description", "display_name", "jurisdiction", "state", "tax_type")


class TaxRates(StoreCore):
    """``/v1/tax_rates``, and the tax rates invoice lines refer to."""

    def _init_state(self) -> None:
        super()._init_state()
        self._stripe_made_rates: dict[str, str] = {}  # tax rate id -> "tax_amounts" | "automatic_tax"
        self._rates_by_data: dict[tuple[tuple[str, str], ...], str] = {}  # exact tax_rate_data -> id
        self._automatic_rates: dict[tuple[str, str], str] = {}  # (country, percentage) -> id

    def create_tax_rate(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/tax_rates."""
        _check_percentage(params["percentage"], "percentage")
        with self._lock:
            rate = self._add(build.build_tax_rate(self._now(), params, active=params.get("active", True)))
            self._emit("tax_rate.created", rate, ctx)
            return rate

    def update_tax_rate(self, rate_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/tax_rates/{id}: the SDK's update params only (percentage and inclusive never change)."""
        with self._lock:
            rate = self._get("tax_rate", rate_id)
            before = copy.deepcopy(rate)
            for field in UPDATABLE:
                if field in params:
                    rate[field] = params[field]
            if "metadata" in params:
                rate["metadata"] = merge_metadata(rate["metadata"], params["metadata"])
            self._emit_changes("tax_rate.updated", rate, before, ctx)
            return rate

    def list_tax_rates(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/tax_rates, filtered by ``active``, ``inclusive`` and ``created``."""
        with self._lock:
            items = [
                r
                for r in self._objects["tax_rate"].values()
                if (params.get("active") is None or r["active"] == params["active"])
                and (params.get("inclusive") is None or r["inclusive"] == params["inclusive"])
            ]
            return self._page(items, params, "/v1/tax_rates")

    # --- what invoices and invoice items need ----------------------------------------------------

    def _resolve_tax_rates(self, ids: list[str] | None, param: str) -> list[dict[str, Any]]:
        """The tax rates a line or an invoice may be given: existing, active, made by the account."""
        ids = list(ids or [])
        if len(ids) > taxes.MAX_TAX_RATES:
            raise ParameterError(
                f"You can apply at most {taxes.MAX_TAX_RATES} tax rates; {param} has {len(ids)}.", param=param
            )
        rates = []
        for index, rate_id in enumerate(ids):
            where = f"{param}[{index}]"
            if rate_id in ids[:index]:
                raise InvalidRequestError(f"The tax rate {rate_id} is given more than once.", param=where)
            rate = self._objects["tax_rate"].get(rate_id)
            if rate is None:
                raise ResourceMissingError("tax rate", rate_id, where, status=400)
            if rate_id in self._stripe_made_rates:
                raise InvalidRequestError(
                    f"The tax rate {rate_id} was created automatically by Stripe and cannot be added directly to "
                    "invoices or line items.",
                    param=where,
                )
            if not rate["active"]:
                raise InvalidRequestError(
                    f"The tax rate {rate_id} is archived: archived tax rates cannot be added to invoices or line "
                    "items.",
                    param=where,
                )
            rates.append(rate)
        return rates

    def _rate_for_tax_rate_data(self, data: dict[str, Any]) -> dict[str, Any]:
        """The archived TaxRate for a manual tax amount: the one made for these exact data, or a new one."""
        key = tuple(
            sorted(
                (name, str(value.normalize()) if isinstance(value, Decimal) else str(value))
                for name, value in data.items()
            )
        )
        rate_id = self._rates_by_data.get(key)
        if rate_id is None:
            rate = self._add(build.build_tax_rate(self._now(), data, active=False))
            self._stripe_made_rates[rate["id"]] = "tax_amounts"
            self._rates_by_data[key] = rate_id = rate["id"]
        return self._objects["tax_rate"][rate_id]

    def _automatic_rate(self, country: str, percentage: Decimal) -> dict[str, Any]:
        """The archived TaxRate the Stripe Tax model applies in ``country`` at ``percentage`` (one each)."""
        key = (country, str(percentage))
        rate_id = self._automatic_rates.get(key)
        if rate_id is None:
            in_eu = country in taxes.EU_COUNTRIES
            rate = self._add(
                build.build_tax_rate(
                    self._now(),
                    {
                        "display_name": "VAT" if in_eu else "Tax",
                        "percentage": percentage,
                        "inclusive": False,
                        "country": country,
                        "jurisdiction": country,
                        "jurisdiction_level": "country",
                        "tax_type": "vat" if in_eu else None,
                    },
                    active=False,
                    effective_percentage=taxes.percentage_json(percentage),
                )
            )
            self._stripe_made_rates[rate["id"]] = "automatic_tax"
            self._automatic_rates[key] = rate_id = rate["id"]
        return self._objects["tax_rate"][rate_id]


def _check_percentage(value: Decimal, param: str) -> None:
    problem = taxes.percentage_problem(value)
    if problem:
        raise ParameterError(f"Invalid {param}: {problem}.", param=param)


def check_tax_rate_data(data: dict[str, Any], param: str) -> None:
    """``tax_rate_data`` as Stripe takes it: a percentage from 0 to 100 with at most 4 decimal places."""
    _check_percentage(data["percentage"], f"{param}[percentage]")
