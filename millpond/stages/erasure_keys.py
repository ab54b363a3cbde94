"""How an erased customer is named without naming them: the salted hash and the surrogate key.

The registry (``millpond_meta.erasure_requests``) keys a customer by ``HMAC-SHA256(pii_salt, id)``,
never by the id; the rows that keep their business facts get the surrogate
``erased-<request id prefix>``, drawn at random per request, so it says nothing about the id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from millpond.settings import Settings

SURROGATE_PREFIX = "erased-"
REQUEST_ID_BYTES = 16
SURROGATE_CHARS = 12


def pii_salt(settings: Settings) -> bytes:
    """The secret salt of every salted hash (``MILLPOND_PII_SALT``, else the embedded setup's generated one)."""
    return settings.resolved_pii_salt().get_secret_value().encode()


def customer_hash(salt: bytes, customer_id: str) -> str:
    """The registry key of a customer: hex HMAC-SHA256 of the id under the salt."""
    return hmac.new(salt, customer_id.encode(), hashlib.sha256).hexdigest()


def new_request_id() -> str:
    return secrets.token_hex(REQUEST_ID_BYTES)


def surrogate_for(request_id: str) -> str:
    """The customer key that replaces an erased id in the rows that keep their facts."""
    return f"{SURROGATE_PREFIX}{request_id[:SURROGATE_CHARS]}"
