"""A modest per-IP limit on the public doors of the desk (the help form, the ticket page, the
chat widget), kept in Django's cache: enough to stop a script filling the queue, never in the
way of a customer. Limits are per hour and can be changed with
``settings.PATRON_SERVICE_RATE_LIMITS`` (``{"help": 10, "chat_start": 10, …}``).

The visitor's address is ``REMOTE_ADDR``; behind N reverse proxies set
``PATRON_TRUSTED_PROXIES = N`` so the N-th address from the right of ``X-Forwarded-For`` is
used instead (a client can put anything on the left of that header).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from patron.errors import PatronError

WINDOW_SECONDS = 3600
DEFAULT_LIMITS = {
    "help": 10,  # new requests through the web form
    "ticket": 30,  # messages and "did not help" on a ticket's page
    "chat_start": 10,
    "chat_message": 120,
    "chat_poll": 1200,  # a widget polling every 5 seconds for an hour
}


class TooManyRequests(PatronError):
    status = 429
    code = "rate_limited"


def client_ip(request: HttpRequest) -> str:
    proxies = int(getattr(settings, "PATRON_TRUSTED_PROXIES", 0) or 0)
    if proxies > 0:
        chain = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(chain) >= proxies:
            return chain[-proxies]
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def limit_of(scope: str) -> int:
    configured = getattr(settings, "PATRON_SERVICE_RATE_LIMITS", None) or {}
    return int(configured.get(scope, DEFAULT_LIMITS[scope]))


def rate_limit(request: HttpRequest, scope: str) -> None:
    """Count one request of ``scope`` from the visitor's address; ``TooManyRequests`` (429)
    past the hour's limit, saying when to try again."""
    limit = limit_of(scope)
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = f"patron.service.throttle:{scope}:{client_ip(request)}:{window}"
    cache.add(key, 0, timeout=WINDOW_SECONDS + 60)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=WINDOW_SECONDS + 60)
        count = 1
    if count > limit:
        minutes = max(1, int(((window + 1) * WINDOW_SECONDS - now) // 60) + 1)
        raise TooManyRequests(
            f"too many requests from your address ({limit} an hour): "
            f"please try again in {minutes} minutes",
            details={"retry_after_minutes": minutes},
        )
