"""Sealing blobs: zstd compression (with frame checksums), then optional encryption.

A sealed blob is ``tag byte + payload`` where the tag says raw (0) or zstd (1). With a
key, the whole of that is encrypted with ChaCha20-Poly1305 under a random 12-byte nonce
and the blob's id as associated data, so a blob cannot be swapped for another unseen.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import zstandard

from vstudio.errors import BadInput, CorruptObject, DecryptionError

RAW = 0
ZSTD = 1
_RAW_TAG = bytes([RAW])
NONCE = 12
LEVEL = 3
_KEY_AAD = b"vstudio-store-data-key"
PASSPHRASE_ENV = "VSTUDIO_STORE_PASSPHRASE"


class Codec:
    def __init__(self, key: bytes | None = None, level: int = LEVEL) -> None:
        self.encrypted = key is not None
        self._aead: Any = None
        if key is not None:
            from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

            self._aead = ChaCha20Poly1305(key)
        self._level = level
        self._local = threading.local()  # zstd contexts are not thread-safe

    def _cctx(self) -> zstandard.ZstdCompressor:
        c = getattr(self._local, "c", None)
        if c is None:
            c = self._local.c = zstandard.ZstdCompressor(level=self._level, write_checksum=True)
        return c

    def _dctx(self) -> zstandard.ZstdDecompressor:
        d = getattr(self._local, "d", None)
        if d is None:
            d = self._local.d = zstandard.ZstdDecompressor()
        return d

    def seal(self, aad: bytes, plain: bytes, compress: bool = True) -> bytes:
        return self.seal_ex(aad, plain, compress)[0]

    def seal_ex(self, aad: bytes, plain: bytes, compress: bool = True) -> tuple[bytes, bool]:
        """The sealed blob, and whether compression shrank it."""
        body = b""
        if compress and len(plain) > 64:
            z = self._cctx().compress(plain)
            if len(z) < len(plain) - len(plain) // 32:  # not worth decompressing otherwise
                body = bytes([ZSTD]) + z
        shrank = bool(body)
        if not body:
            body = bytes([RAW]) + plain
        if self._aead is None:
            return body, shrank
        return self._encrypt(aad, body), shrank

    def seal_parts(self, aad: bytes, parts: list[bytes], compress: bool = True) -> bytes:
        """``seal`` of the parts' concatenation; stored raw, the parts are copied once
        (a frame of incompressible chunks is most of a put of random or packed data)."""
        if compress:
            return self.seal(aad, b"".join(parts))
        body = b"".join([_RAW_TAG, *parts])
        return body if self._aead is None else self._encrypt(aad, body)

    def _encrypt(self, aad: bytes, body: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + bytes(self._aead.encrypt(nonce, body, aad))

    def open(self, aad: bytes, stored: bytes, what: str) -> bytes:
        if self._aead is not None:
            from cryptography.exceptions import InvalidTag

            try:
                stored = self._aead.decrypt(stored[:NONCE], stored[NONCE:], aad)
            except (InvalidTag, ValueError):
                raise CorruptObject(f"{what} fails its authentication check (corrupt or "
                                    "tampered): run 'vstudio store check'") from None
        if not stored:
            raise CorruptObject(f"{what} is empty: run 'vstudio store check'")
        tag, body = stored[0], stored[1:]
        if tag == RAW:
            return bytes(body)
        if tag == ZSTD:
            try:
                return self._dctx().decompress(body)
            except zstandard.ZstdError as e:
                raise CorruptObject(f"{what} does not decompress ({e}): "
                                    "run 'vstudio store check'") from None
        raise CorruptObject(f"{what} has an unknown encoding {tag}: run 'vstudio store check'")


# --- keys -------------------------------------------------------------------------------


def _master_from_file(path: Path, create: bool) -> bytes:
    if not path.exists():
        if not create:
            raise DecryptionError(f"the store's key file {path} is missing: restore it")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise BadInput(f"cannot read the key file {path}: {e.strerror}") from None
    if len(raw) == 32:
        return raw
    text = raw.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text.decode())
        except ValueError:
            pass
    if len(raw) < 16:
        raise BadInput(f"the key file {path} is too short: it needs 32 random bytes")
    import blake3

    return blake3.blake3(raw, derive_key_context="vstudio store key file").digest()


def _master_from_passphrase(passphrase: str, salt: bytes, n: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(passphrase.encode())


def new_encryption(options: dict[str, Any]) -> tuple[dict[str, Any], bytes] | None:
    """For a new store: the config section and the data key, or None if not encrypted."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    key_file = options.get("key_file")
    wants_pass = str(options.get("encryption", "")).lower() == "passphrase"
    if not key_file and not wants_pass:
        return None
    section: dict[str, Any] = {"cipher": "chacha20-poly1305"}
    if key_file:
        master = _master_from_file(Path(str(key_file)), create=True)
        section["kdf"] = "keyfile"
    else:
        passphrase = os.environ.get(PASSPHRASE_ENV)
        if not passphrase:
            raise BadInput(f"set {PASSPHRASE_ENV} to the passphrase of the new store")
        salt, n = os.urandom(16), 1 << 15
        master = _master_from_passphrase(passphrase, salt, n)
        section.update(kdf="scrypt", salt=salt.hex(), n=n)
    data_key = os.urandom(32)
    nonce = os.urandom(NONCE)
    section["wrapped_key"] = (nonce + ChaCha20Poly1305(master).encrypt(
        nonce, data_key, _KEY_AAD)).hex()
    return section, data_key


def open_encryption(section: dict[str, Any], options: dict[str, Any]) -> bytes:
    """The data key of an encrypted store, from its config section and the user's key."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    kdf = section.get("kdf")
    if options.get("key_file"):
        master = _master_from_file(Path(str(options["key_file"])), create=False)
    elif os.environ.get(PASSPHRASE_ENV) and kdf == "scrypt":
        master = _master_from_passphrase(os.environ[PASSPHRASE_ENV],
                                         bytes.fromhex(section["salt"]), int(section["n"]))
    else:
        how = "key_file in studio.toml's [store]" if kdf == "keyfile" else PASSPHRASE_ENV
        raise DecryptionError(f"the store is encrypted: give its key ({how})")
    wrapped = bytes.fromhex(section["wrapped_key"])
    try:
        return ChaCha20Poly1305(master).decrypt(wrapped[:NONCE], wrapped[NONCE:], _KEY_AAD)
    except (InvalidTag, ValueError):
        raise DecryptionError("cannot decrypt the store: wrong encryption key or "
                              "passphrase") from None


def dump_config(cfg: dict[str, Any]) -> bytes:
    return json.dumps(cfg, indent=1, sort_keys=True).encode()
