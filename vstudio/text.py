"""Text a database can store: one check shared by the API's and the farm's input models."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def storable(text: str) -> str:
    """Refuse what a database cannot store (NUL, lone surrogates): a 422, never a 500."""
    if "\x00" in text:
        raise ValueError("text must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode") from None
    return text


Text = Annotated[str, AfterValidator(storable)]
