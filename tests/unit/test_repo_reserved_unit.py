"""The working copy's folder name ``.vstudio`` is reserved at every depth, in every case."""

from __future__ import annotations

import pytest

from vstudio.repo import paths as P


@pytest.mark.parametrize("raw", [
    ".vstudio/wc.json", "sub/.vstudio/wc.json", "a/b/.VSTUDIO/wc.json", "sub/.VStudio",
    "sub/.vstudio", "sub/.vstudio./wc.json", "sub/.vstudio /wc.json",
    "sub/.v\u017ftudio/wc.json",  # long s: folded to "s" by case-insensitive file systems
    "sub/.vstud\u0131o/wc.json",  # dotless i: upper-cases to "I"
    "./sub//.Vstudio/x",
])
def test_reserved_at_every_depth_and_case(raw: str) -> None:
    with pytest.raises(P.BadPath, match="reserved at every depth"):
        P.normalise(raw)


@pytest.mark.parametrize("raw", ["sub/.vstudioX/a", "sub/x.vstudio", "vstudio/a",
                                 "sub/..vstudio/a", "sub/.vstudi/a", ".vstudioignore"])
def test_similar_names_stay_allowed(raw: str) -> None:
    assert P.normalise(raw) == raw
