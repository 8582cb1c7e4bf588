"""Proof that an uploader holds a file's bytes, before its upload earns a read grant.

Uploads send only the chunks the store lacks, so a client that names a file's chunks
has not necessarily sent (or seen) them: knowing ids must not buy a grant. Each chunk of
an upload is proven one of two ways:

- a receipt: ``/chunks`` signs every chunk whose bytes it received from this user;
- a keyed hash: ``/chunks/missing`` hands out a signed nonce, and the client sends
  BLAKE3 of the chunk's bytes keyed by it (``store.api.proof_key``). The server checks a
  few of them, picked at random, against the bytes it holds.

A file the store had already must also be named by the same pieces as the stored one,
since the server does not rebuild it again.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

import blake3

from vstudio.catalog.accounts import User
from vstudio.grants import grants_of
from vstudio.store import format as fmt
from vstudio.store.api import proof_key
from vstudio.studio import Studio

PROOF_CHECKS = 2  # keyed hashes checked per upload: each costs one chunk read
EMPTY = blake3.blake3(b"").hexdigest()
_OBJECT_ID = re.compile(r"[0-9a-fA-F]{64}")


def chunk_subject(key_hex: str) -> str:
    return "chunk:" + key_hex


def same_pieces(store: Any, oid: str, entries: list[fmt.Entry], transform: str | None) -> bool:
    """Whether ``entries`` are the stored file's own pieces."""
    recipe = store.recipe(oid)
    if recipe is None:
        return [(e.type, e.id.hex()) for e in entries] == [(fmt.E_CHUNK, oid)]
    if (recipe.transform or "") != (transform or ""):
        return False
    theirs = [(e.type, e.length, e.id, e.data) for e in store.flat(recipe.entries)]
    return theirs == [(e.type, e.length, e.id, e.data) for e in entries]


def self_contained(params: dict[str, Any]) -> bool:
    """Whether a transform's parameters name no store object, so the file's bytes come
    from its pieces alone. A delta on object X could rebuild X from X itself: proving
    its few pieces would then buy a grant for X without its bytes."""
    return _OBJECT_ID.search(json.dumps(params)) is None


def proven(studio: Studio, user: User, oid: str, entries: list[fmt.Entry], existed: bool,
           transform: str | None, proofs: dict[str, dict[str, str]]) -> bool:
    """Whether ``user`` showed they hold the bytes of every chunk of ``oid``."""
    if oid == EMPTY:
        return True
    store: Any = studio.store
    if existed and not same_pieces(store, oid, entries, transform):
        return False
    signer = grants_of(studio)
    to_check: list[tuple[str, str, str]] = []
    for key in dict.fromkeys(e.id.hex() for e in entries if e.type == fmt.E_CHUNK):
        p = proofs.get(key) or {}
        if signer.valid(user.name, chunk_subject(key), p.get("receipt")):
            continue
        nonce, mac = p.get("nonce", ""), p.get("mac", "")
        if not (mac and signer.valid(user.name, "nonce", nonce)):
            return False
        to_check.append((key, nonce, mac))
    for key, nonce, mac in random.sample(to_check, min(PROOF_CHECKS, len(to_check))):
        data = store.blob(bytes.fromhex(key))
        if blake3.blake3(data, key=proof_key(nonce)).hexdigest() != mac:
            return False
    return True
