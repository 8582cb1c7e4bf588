"""Repository references of job inputs: numbers the catalog cannot hold are bad input."""

from __future__ import annotations

import pytest

from vstudio.errors import BadInput
from vstudio.farm.spec import MAX_ID, parse_ref


@pytest.mark.parametrize("ref,want", [
    ("film@3:a/b.blend", ("film", 3, "a/b.blend")), ("film@r12:x", ("film", 12, "x")),
    ("film@HEAD:x", ("film", None, "x")), ("film@:x", ("film", None, "x")),
    (f"film@{MAX_ID}:x", ("film", MAX_ID, "x")),
])
def test_parse_ref(ref: str, want: tuple[str, int | None, str]) -> None:
    assert parse_ref(ref) == want


@pytest.mark.parametrize("ref", [
    "film@99999999999999999999:x", f"film@{MAX_ID + 1}:x", "film@r-1:x", "film@-1:x",
    "film@1e3:x", "film@\u0663:x", "film@ 5:x", "film@3", "@3:x", "film@tip:x"])
def test_bad_refs(ref: str) -> None:
    with pytest.raises(BadInput):
        parse_ref(ref)
