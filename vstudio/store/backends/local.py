"""A backend in a local folder: one file per object, written atomically."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from vstudio.errors import BackendUnavailable, BadInput, ObjectMissing
from vstudio.store.api import Features, ObjectInfo

_TMP = ".tmp"  # temp files live here so that ``list`` never sees a half-written object


class LocalBackend:
    atomic_create = True

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        if self.root.exists() and not self.root.is_dir():
            raise BadInput(f"store folder {self.root} exists and is not a folder")
        # The folder is made by the first write, not here: opening a mistyped path must
        # not leave an empty folder behind (only 'vstudio init' creates a store).
        self._tmp_ready = False
        self.features = Features(temp=self, parts=self)

    def _path(self, name: str) -> Path:
        if not name or name.startswith("/") or ".." in name.split("/") or name.startswith(_TMP):
            raise BadInput(f"invalid object name {name!r}")
        return self.root / name

    def _tmp(self) -> Path:
        if not self._tmp_ready:
            try:
                (self.root / _TMP).mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise BackendUnavailable(
                    f"cannot create the store folder {self.root}: {e.strerror}") from None
            self._tmp_ready = True
        return self.root / _TMP / uuid.uuid4().hex

    @staticmethod
    def _fsync_dir(folder: Path) -> None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_tmp(self, data: bytes) -> Path:
        tmp = self._tmp()
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return tmp

    def _install(self, tmp: Path, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        self._fsync_dir(dest.parent)

    def put(self, name: str, data: bytes) -> None:
        dest = self._path(name)
        tmp = self._write_tmp(data)
        try:
            self._install(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_parts(self, name: str, parts: list[bytes]) -> None:
        """``put`` of the parts' concatenation, written without joining them in memory."""
        dest = self._path(name)
        tmp = self._tmp()
        try:
            with open(tmp, "wb") as f:
                f.writelines(parts)
                f.flush()
                os.fsync(f.fileno())
            self._install(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_path(self, name: str, path: Path) -> None:
        dest = self._path(name)
        tmp = self._tmp()
        try:
            with open(path, "rb") as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            self._install(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def create(self, name: str, data: bytes) -> bool:
        # link() fails if the name exists: an atomic "create if absent" of a whole file.
        dest = self._path(name)
        tmp = self._write_tmp(data)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(tmp, dest)
            self._fsync_dir(dest.parent)
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(f"{name} is missing from the store folder {self.root}") from None

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        try:
            with open(self._path(name), "rb") as f:
                f.seek(offset)
                return f.read(length)
        except FileNotFoundError:
            raise ObjectMissing(f"{name} is missing from the store folder {self.root}") from None

    def stat(self, name: str) -> ObjectInfo:
        try:
            st = self._path(name).stat()
        except FileNotFoundError:
            raise ObjectMissing(f"{name} is missing from the store folder {self.root}") from None
        return ObjectInfo(name, st.st_size, st.st_mtime)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # Walk only the folder the prefix points into; names are '/'-separated keys.
        base, _, _ = prefix.rpartition("/")
        start = self.root / base if base else self.root
        if not start.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(start):
            rel = os.path.relpath(dirpath, self.root)
            rel = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            if rel == "":
                dirnames[:] = [d for d in dirnames if d != _TMP]
            for fn in filenames:
                name = rel + fn
                if name.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        st = os.stat(os.path.join(dirpath, fn))
                        yield ObjectInfo(name, st.st_size, st.st_mtime)

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def describe(self) -> str:
        return f"file://{self.root}"

    def _temp_files(self) -> Iterator[Path]:
        with contextlib.suppress(FileNotFoundError):  # nothing was written yet
            yield from (self.root / _TMP).iterdir()

    def temp_bytes(self) -> int:
        """Bytes in temp files (a write under way, or left by a killed writer)."""
        total = 0
        for p in self._temp_files():
            with contextlib.suppress(FileNotFoundError):
                total += p.stat().st_size
        return total

    def clean_temp(self, older_than: float) -> int:
        """Remove temp files a killed writer left, older than ``older_than`` seconds."""
        import time

        removed = 0
        now = time.time()
        for p in self._temp_files():
            with contextlib.suppress(FileNotFoundError):
                if now - p.stat().st_mtime >= older_than:
                    p.unlink()
                    removed += 1
        return removed
