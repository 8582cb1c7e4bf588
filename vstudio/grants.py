"""Read grants: short-lived, signed permissions to read one store object.

Content ids are not secrets (a job page, a log, a former member may know one), so knowing
an id must never be enough to read it. The server hands a grant for an object to a user
where that user may read it: a tree of a project they may read, the outputs of a job they
may see, the inputs of the task their render node holds, or a file they just uploaded.
The raw store routes serve an object only with a valid grant (or to an admin).

A grant is ``EXP.MAC``: ``EXP`` the Unix time it expires (hex), ``MAC`` the first 16 bytes
of HMAC-SHA256 over user, object id and ``EXP`` under the studio's grant key (base64url).
It checks without a database query, and every server replica of a studio accepts the
others' grants: the key lives in the studio's store (ref ``server/grant-key``), created
once with the store's atomic create-if-absent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from vstudio.errors import PermissionDenied

if TYPE_CHECKING:
    from vstudio.catalog.accounts import User
    from vstudio.store.api import ObjectStore
    from vstudio.studio import Studio

KEY_REF = "server/grant-key"
GRANT_SECONDS = 4 * 3600  # long enough for a big checkout; clients renew them after


class GrantMissing(PermissionDenied):
    """This object needs a read grant: get its id from a tree, a job or an upload."""


class Grants:
    def __init__(self, key: bytes) -> None:
        self.key = key

    def _mac(self, user: str, oid: str, exp: int) -> str:
        mac = hmac.new(self.key, f"{user}\n{oid}\n{exp}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:16]).rstrip(b"=").decode()

    def mint(self, user: str, oid: str, exp: int | None = None) -> str:
        exp = exp or int(time.time()) + GRANT_SECONDS
        return f"{exp:x}.{self._mac(user, oid, exp)}"

    def mint_many(self, user: str, oids: Iterable[str]) -> list[str]:
        exp = int(time.time()) + GRANT_SECONDS
        return [self.mint(user, oid, exp) for oid in oids]

    def valid(self, user: str, oid: str, grant: str | None) -> bool:
        if not grant or len(grant) > 64:
            return False
        exp_s, _, mac = grant.partition(".")
        try:
            exp = int(exp_s, 16)
        except ValueError:
            return False
        if exp < time.time():
            return False
        return hmac.compare_digest(mac, self._mac(user, oid, exp))

    def require(self, user: User, oid: str, grant: str | None) -> None:
        """Pass for an admin or a valid grant; ``GrantMissing`` otherwise."""
        if user.is_admin or self.valid(user.name, oid, grant):
            return
        if grant:
            raise GrantMissing(f"the read grant for {oid} is not valid (expired, or "
                               "handed to another user): ask for the object again")
        raise GrantMissing(f"reading {oid} needs a read grant: get its id from a tree, "
                           "a job's outputs, a task or an upload")


def grants_of(studio: Studio) -> Grants:
    """The studio's grant signer (its key made on first use)."""
    def make() -> Grants:
        store = studio.store
        store.create_ref(KEY_REF, secrets.token_bytes(32))  # no-op when it exists
        return Grants(store.get_ref(KEY_REF))

    return studio.shared("grants", make)


def store_signer(store: ObjectStore) -> Callable[[str, str], str]:
    """Mints grants ``(user, oid)`` with the studio's key, read from ``store`` when first
    needed: a render node that opened the studio's store itself (``worker --store``)
    vouches for its outputs with it, as the server does for an upload."""
    signer: list[Grants] = []

    def sign(user: str, oid: str) -> str:
        if not signer:
            signer.append(Grants(store.get_ref(KEY_REF)))
        return signer[0].mint(user, oid)

    return sign
