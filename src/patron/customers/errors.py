"""Customer errors with stable codes."""

from __future__ import annotations

from patron.core.errors import Conflict, NotFound


class CustomerNotFound(NotFound):
    code = "customer_not_found"
    title = "Customer not found"


class DuplicateEmail(Conflict):
    code = "duplicate_email"
    title = "A customer with this email exists"


class CustomerErased(Conflict):
    code = "customer_erased"
    title = "The customer was erased"


class CustomerMerged(Conflict):
    code = "customer_merged"
    title = "The customer was merged into another"


class DuplicateExternalId(Conflict):
    code = "duplicate_external_id"
    title = "A customer with this external id exists"
