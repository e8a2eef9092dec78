"""Admission: rate limits, concurrency caps and budget reservations, exact across gateway processes.

The request pipeline builds a ``Demand``, awaits ``admit()`` (a ``Ticket``, or ``AdmissionRefused``)
and, however the request ends, settles the ticket once with ``settle()`` (or ``settle_later()`` where
it cannot await). ``budget_status()`` is for admin. ``apps.billing.admission.service`` says how it
works; README, "Limits and budgets", what users are promised.
"""

from apps.billing.admission.contract import AdmissionRefused, BudgetStatus, Demand, Quota, Ticket
from apps.billing.admission.service import admission, admit, settle, settle_later
from apps.billing.admission.status import budget_status

__all__ = [
    "AdmissionRefused",
    "BudgetStatus",
    "Demand",
    "Quota",
    "Ticket",
    "admission",
    "admit",
    "budget_status",
    "settle",
    "settle_later",
]
