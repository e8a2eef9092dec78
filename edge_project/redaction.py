"""What must never be written anywhere (log lines, tracebacks, span attributes, metric labels), found and hidden.

``redact(text)`` replaces each secret or piece of personal data with ``[REDACTED:<detector>]`` and counts it
in ``redactions_total{detector}``. Every layer may import this module (it imports no app): the log formatter
(``apps.proxy.logging``) applies it to messages, arguments and tracebacks, the span exporter
(``edge_project.tracing``) to span names, attributes, events and statuses, and metrics code to label values.

Detectors, in the order they run (earlier ones are more specific, so a key is never half-eaten as a phone
number): our keys (``sk-edge-…``), Anthropic's and OpenAI's keys, Google's (``AIza…``), Azure keys where
something labels them (``api-key: <32 hex>``), bearer tokens, JWTs, email addresses, card numbers (only if
the Luhn checksum holds, so order and invoice numbers survive), US social security numbers (dashed form),
IBANs (only if the mod-97 checksum holds), phone numbers (international ``+…`` or North American with
separators), and IP addresses when ``EDGE_REDACT_IP_ADDRESSES`` is on.

Speed: each detector has a cheap cue (a literal such as ``sk-`` or ``@``, or a run of eight digits and
separators) and its pattern runs only on strings that carry the cue, so most strings pass through a dozen
substring tests; the checksums run only on what a pattern matched.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from prometheus_client import Counter

REDACTIONS = Counter("redactions", "Secrets and personal data hidden before being written out, by detector.",
                     ["detector"])


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    # ISO 13616: move the country code and check digits to the end, letters as 10..35, remainder 1 mod 97.
    rearranged = candidate[4:] + candidate[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


Cue = Callable[[str], bool]


def contains(*needles: str) -> Cue:
    if len(needles) == 1:
        needle = needles[0]
        return lambda text: needle in text
    return lambda text: any(needle in text for needle in needles)


# Digit-based detectors need a run of at least 8 digits and separators (a card, an SSN, a phone number, the
# digits of an IBAN, a dotted IPv4 address); "HTTP 502 after 2 attempts" has none and skips all of them.
_NUMBERISH = re.compile(r"\d[\d \-().]{6,}\d")
numberish: Cue = lambda text: _NUMBERISH.search(text) is not None  # noqa: E731
_SEPARATORS = re.compile(r"[ \-]")


class Detector:
    """One kind of secret: a cheap cue that must be present, the pattern, and an optional checksum."""

    __slots__ = ("counter", "cue", "keep_label", "name", "pattern", "replacement", "valid")

    def __init__(self, name: str, pattern: str, cue: Cue, *, valid: Callable[[str], bool] | None = None,
                 keep_label: bool = False) -> None:
        self.name = name
        self.pattern = re.compile(pattern)
        self.cue = cue
        self.valid = valid  # a checksum the match (separators removed) must pass
        self.keep_label = keep_label  # a labelled secret: the label (group 1) stays, only the value goes
        self.replacement = f"[REDACTED:{name}]"
        self.counter = REDACTIONS.labels(detector=name)

    def sub(self, text: str) -> str:
        return self.pattern.sub(self._replace, text) if self.cue(text) else text

    def _replace(self, match: re.Match[str]) -> str:
        if self.valid is not None and not self.valid(_SEPARATORS.sub("", match.group(0))):
            return match.group(0)
        self.counter.inc()
        return match.group(1) + self.replacement if self.keep_label else self.replacement


_SECRETS = [
    Detector("edge_key", r"sk-edge-[A-Za-z0-9_\-]{16,}", contains("sk-edge-")),
    Detector("anthropic_key", r"sk-ant-[A-Za-z0-9_\-]{16,}", contains("sk-ant-")),
    Detector("openai_key", r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}", contains("sk-")),
    Detector("google_key", r"AIza[0-9A-Za-z_\-]{30,}", contains("AIza")),
    Detector("azure_key",
             r"((?i:api-key|ocp-apim-subscription-key|azure[_-]?(?:openai[_-]?)?(?:api[_-]?)?key)[\"']?\s*[:=]\s*[\"']?)"
             r"(?:[0-9a-fA-F]{32}|[A-Za-z0-9]{84})\b", contains("key", "Key", "KEY"), keep_label=True),
    Detector("bearer", r"((?i:bearer)\s+)[A-Za-z0-9._~+/=\-]{8,}", contains("earer", "EARER"), keep_label=True),
    Detector("jwt", r"eyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*", contains("eyJ")),
]
_PERSONAL = [
    Detector("email", r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}", contains("@")),
    Detector("card", r"(?<![\w.])\d(?:[ \-]?\d){12,18}(?![\w.])", numberish, valid=luhn_valid),
    Detector("ssn", r"(?<![\w\-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w\-])", numberish),
    Detector("iban", r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", numberish, valid=iban_valid),
    Detector("phone",
             r"(?<![\w+])(?:\+\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]?\d{2,4}){2,4}"
             r"|\(?\d{3}\)?[ .\-]\d{3}[ .\-]\d{4})(?!\w)", numberish),
]
_IPV6_CUE = re.compile(r"[0-9A-Fa-f]:[0-9A-Fa-f:]")
_IP = [
    Detector("ip_address",
             r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w.])"
             # IPv6: all eight groups, or compressed with "::" (a clock's 06:11:03 is neither)
             r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])"
             r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*)?(?![\w:])",
             lambda text: numberish(text) or _IPV6_CUE.search(text) is not None),
]


def _has_any_cue(text: str) -> bool:
    # Every detector's cue at once, as plain substring tests: the common case (nothing to hide) costs well
    # under a microsecond, and only a string that trips one of them pays for the detectors.
    return ("sk-" in text or "@" in text or "AIza" in text or "eyJ" in text or "earer" in text or "EARER" in text
            or "key" in text or "Key" in text or "KEY" in text or _NUMBERISH.search(text) is not None)


class Redactor:
    def __init__(self, *, ip_addresses: bool = False) -> None:
        self.detectors = _SECRETS + _PERSONAL + (_IP if ip_addresses else [])
        self.ip_addresses = ip_addresses

    def __call__(self, text: str) -> str:
        if not (_has_any_cue(text) or (self.ip_addresses and _IPV6_CUE.search(text))):
            return text
        for detector in self.detectors:
            text = detector.sub(text)
        return text


_redactor: Redactor | None = None


def redact(text: str) -> str:
    """``text`` with every secret and piece of personal data replaced (see the module docstring)."""
    return (_redactor or configure())(text)


def configure(*, ip_addresses: bool | None = None) -> Redactor:
    """The process's redactor, built from settings (or ``ip_addresses``, for tests) on first use."""
    global _redactor
    if ip_addresses is None:
        from django.conf import settings

        ip_addresses = settings.configured and bool(getattr(settings, "EDGE_REDACT_IP_ADDRESSES", False))
    _redactor = Redactor(ip_addresses=ip_addresses)
    return _redactor
