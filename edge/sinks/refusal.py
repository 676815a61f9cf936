"""The one decision every HTTP sink makes on a non-2xx answer: retry later, or set the entry aside.

A 4xx means the request itself is wrong and retrying cannot help: `SinkRejected`, and the
forwarder splits the batch until the one refused entry is found and set aside. Except 401 and 403
(a wrong or revoked token, key or secret is a configuration fault that must not drop alerts; the
operator sees sink errors and /readyz), 408 and 429 (the receiver timed out, or asks us to slow
down): those, 3xx (redirects are not followed), 5xx and anything else are `SinkUnavailable`,
retried without limit. The TSDB, the central alert API, webhooks and the WeCom / DingTalk robots
all decide this way; tests/test_refusal.py pins the table.
"""

from __future__ import annotations

from edge.errors import SinkRejected, SinkUnavailable

RETRIED_4XX = frozenset({401, 403, 408, 429})
HTTP_TIMEOUT_S = 10.0  # per request, for every HTTP sink unless its settings say otherwise


def refusal(status: int, message: str) -> SinkRejected | SinkUnavailable:
    """The error for a non-2xx `status`: `SinkRejected` (set aside) or `SinkUnavailable` (retry)."""
    if 400 <= status < 500 and status not in RETRIED_4XX:
        return SinkRejected(message)
    return SinkUnavailable(message)
