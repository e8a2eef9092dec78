"""What a second gateway process does in the cross-process tests: admit demands concurrently, at a given time."""

from __future__ import annotations

import asyncio


def admit_concurrently(subjects: tuple[object, ...], count: int, now_ms: int) -> list[tuple[bool, float | None]]:
    """Admit ``count`` one-token demands at once in this process: (admitted, the refusal's retry_after_s) each."""
    import django

    django.setup()
    from apps.billing.admission import AdmissionRefused
    from apps.billing.limits import Subject
    from tests.billing.admission.helpers import Clock, demand, engine, outcomes

    clock = Clock()
    clock.ms = now_ms
    wanted = [demand(*(subject for subject in subjects if isinstance(subject, Subject))) for _ in range(count)]

    async def scenario() -> list[tuple[bool, float | None]]:
        results = await outcomes(engine(clock), wanted)
        return [(not isinstance(result, AdmissionRefused), getattr(result, "retry_after_s", None))
                for result in results]

    return asyncio.run(scenario())
