"""The retry wrapper: transient backend errors are retried with backoff, others are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from vstudio.errors import BackendUnavailable, ObjectMissing
from vstudio.store.api import Features
from vstudio.store.backends.local import LocalBackend
from vstudio.store.backends.memory import MemoryBackend
from vstudio.store.backends.retry import RetryBackend


class Flaky(MemoryBackend):
    def __init__(self, failures: int, retry: bool) -> None:
        super().__init__("flaky")
        self.failures, self.retry, self.calls = failures, retry, 0

    def get(self, name: str) -> bytes:
        self.calls += 1
        if self.calls <= self.failures:
            err = BackendUnavailable("connection reset")
            err.context["retry"] = self.retry
            raise err
        return super().get(name)


def test_transient_errors_are_retried() -> None:
    inner = Flaky(failures=2, retry=True)
    inner.put("a", b"data")
    assert RetryBackend(inner, base_delay=0.001).get("a") == b"data"
    assert inner.calls == 3


def test_gives_up_after_the_last_attempt() -> None:
    inner = Flaky(failures=10, retry=True)
    with pytest.raises(BackendUnavailable, match="connection reset"):
        RetryBackend(inner, attempts=3, base_delay=0.001).get("a")
    assert inner.calls == 3


def test_permanent_errors_are_not_retried() -> None:
    inner = Flaky(failures=1, retry=False)
    with pytest.raises(BackendUnavailable):
        RetryBackend(inner, base_delay=0.001).get("a")
    assert inner.calls == 1
    with pytest.raises(ObjectMissing):  # a missing object is an answer, not a failure
        RetryBackend(MemoryBackend("x"), base_delay=0.001).get("nope")


def test_optional_features_pass_through_the_wrapper(tmp_path: Path) -> None:
    assert RetryBackend(MemoryBackend("plain")).features == Features()
    wrapped = RetryBackend(LocalBackend(tmp_path), base_delay=0.001)
    assert wrapped.features.presign is None
    assert wrapped.features.parts is not None and wrapped.features.temp is not None
    wrapped.features.parts.put_parts("packs/ab", [b"one", b"two"])
    assert wrapped.get("packs/ab") == b"onetwo"
    assert wrapped.features.temp.temp_bytes() == 0


class FlakyTemp(LocalBackend):
    calls = 0

    def clean_temp(self, older_than: float) -> int:
        self.calls += 1
        if self.calls == 1:
            err = BackendUnavailable("disk busy")
            err.context["retry"] = True
            raise err
        return super().clean_temp(older_than)


def test_optional_features_are_retried_too(tmp_path: Path) -> None:
    inner = FlakyTemp(tmp_path)
    assert RetryBackend(inner, base_delay=0.001).features.temp.clean_temp(0) == 0
    assert inner.calls == 2
