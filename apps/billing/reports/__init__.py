"""Cost reports from the rollups (never the ledger): admin's report pages, the FOCUS export and the
OpenAI-shaped usage and cost APIs all read ``apps.billing.models.HourlyRollup``/``DailyRollup``.

``query`` sums rollups into report rows, ``charts`` draws them as SVG, ``focus`` writes FOCUS 1.2
rows, ``openai_usage`` answers ``/v1/organization/...`` and ``admin_views`` shows them to staff.
"""
