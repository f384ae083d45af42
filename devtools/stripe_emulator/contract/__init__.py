"""Stripe's API contract at the pinned version, read from the installed ``stripe`` SDK.

The SDK is generated from Stripe's OpenAPI spec for one API version (``stripe._api_version``), and
it carries that spec in Python form:

- every operation is a service method (``stripe/_*_service.py``) that names its HTTP method and
  path in its ``self._request(...)`` call, its parameters as a ``TypedDict`` (``stripe/params``) and
  the resource it answers with as its return annotation;
- every resource is a class whose annotations are its fields (``Optional`` where Stripe may send
  ``null``), with nested classes for sub-objects and ``Literal`` for enums.

This module turns those declarations into the emulator's request validation and into a shape check
for everything the emulator answers, so an SDK upgrade that changes the API changes the emulator's
contract (and fails tests) instead of leaving a stale picture of Stripe behind.

Where the SDK cannot tell "absent" from "null" (both are ``Optional``), ``response_shapes.PRESENT_ONLY_WHEN_SET``
names the fields Stripe omits instead of sending ``null``, each with the reason.
"""

from stripe_emulator.contract.request_params import (
    LIST_LIMIT_RANGE,
    MAX_EVENT_TYPES_FILTER,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    METADATA_KEY_MAX,
    METADATA_MAX_KEYS,
    METADATA_VALUE_MAX,
    check_params,
)
from stripe_emulator.contract.response_shapes import (
    PRESENT_ONLY_WHEN_SET,
    error_violations,
    object_violations,
    shape_violations,
)
from stripe_emulator.contract.sdk import (
    API_VERSION,
    Operation,
    declared_fields,
    error_codes,
    event_types,
    operation,
    operations,
    resource_classes,
)

__all__ = [
    "API_VERSION",
    "LIST_LIMIT_RANGE",
    "MAX_EVENT_TYPES_FILTER",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "METADATA_KEY_MAX",
    "METADATA_MAX_KEYS",
    "METADATA_VALUE_MAX",
    "PRESENT_ONLY_WHEN_SET",
    "Operation",
    "check_params",
    "declared_fields",
    "error_codes",
    "error_violations",
    "event_types",
    "object_violations",
    "operation",
    "operations",
    "resource_classes",
    "shape_violations",
]
