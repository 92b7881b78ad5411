"""API keys: shown once when created, stored only as a hash, revocable."""

import hashlib
import hmac
import secrets

from django.db import transaction
from django.utils import timezone

from loyalty.models import ApiKey, audit

KEY_PREFIX = "lk"


def hash_key(raw):
    # The key has 256 random bits, so a fast hash is as safe as a slow one here and keeps
    # every API call cheap.
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic(durable=True)
def create_api_key(*, store, name, staff=None):
    """A new key for ``store``. Returns (ApiKey, raw key); the raw key is never stored."""
    prefix = secrets.token_hex(6)
    raw = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        store=store, name=name, prefix=prefix, key_hash=hash_key(raw), created_by=staff
    )
    audit(actor=staff, action="apikey.create", obj=key, after={"store": store.code, "name": name})
    return key, raw


@transaction.atomic(durable=True)
def revoke_api_key(*, key_id, staff=None):
    """Revoke a key at once; requests with it are refused from now on."""
    key = ApiKey.objects.select_for_update().get(pk=key_id)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit(
            actor=staff,
            action="apikey.revoke",
            obj=key,
            before={"revoked_at": None},
            after={"revoked_at": key.revoked_at.isoformat()},
        )
    return key


def find_active_key(raw):
    """The active key matching ``raw``, or None. Constant-time comparison of the hash."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or len(parts[1]) > 16:
        return None
    key = ApiKey.objects.select_related("store").filter(prefix=parts[1]).first()
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.key_hash, hash_key(raw)):
        return None
    return key
