"""Every key ``studio.toml`` may hold, with what it must be.

``check`` runs when the file is read, for every command, so a typo or a bad value stops
the command with one line naming the file, the key and what is expected, instead of a
traceback later or a silently different behaviour (``port = 99999``, ``lease_seconds =
nan``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vstudio.errors import BadInput

# A rule returns None when the value is good, else what it should be.
Rule = Callable[[Any], str | None]


def text(nonempty: bool = True) -> Rule:
    def rule(v: Any) -> str | None:
        ok = isinstance(v, str) and (v.strip() != "" or not nonempty)
        return None if ok else "a non-empty string" if nonempty else "a string"
    return rule


def number(low: float, high: float, unit: str, integer: bool = False) -> Rule:
    kind = "a whole number" if integer else "a number"

    def rule(v: Any) -> str | None:
        good_type = isinstance(v, int) if integer else isinstance(v, int | float)
        if isinstance(v, bool) or not good_type or not math.isfinite(v) \
                or not low <= v <= high:
            return f"{kind} from {low:g} to {high:g} ({unit})"
        return None
    return rule


def choice(*options: str) -> Rule:
    def rule(v: Any) -> str | None:
        return None if v in options else "one of " + ", ".join(repr(o) for o in options)
    return rule


def db_url(v: Any) -> str | None:
    ok = isinstance(v, str) and v.split(":", 1)[0].split("+")[0] in ("sqlite", "postgresql")
    return None if ok else "a database URL: sqlite:///FILE or postgresql://USER@HOST/DB"


SCHEMA: dict[str, dict[str, Rule]] = {
    "studio": {"name": text()},
    "catalog": {"url": db_url},
    "store": {"url": text(), "key_file": text(), "encryption": choice("passphrase"),
              "upload_threads": number(1, 64, "threads", integer=True),
              "rebuilt_cache_mb": number(0, 1 << 24, "megabytes", integer=True)},
    "server": {"host": text(), "port": number(1, 65535, "TCP port", integer=True),
               "session_hours": number(0.0001, 8784, "hours"),
               "max_body_mb": number(0.001, 4096, "megabytes"),
               "max_upload_mb": number(0.001, 4096, "megabytes"),
               "web_sample_seconds": number(5, 86400, "seconds")},
    "farm": {"lease_seconds": number(0.5, 86400, "seconds"),
             "reap_seconds": number(0.05, 3600, "seconds")},
}


def check(path: Path, data: dict[str, Any]) -> None:
    """Raise BadInput for the first unknown section or key, or bad value, in ``data``."""
    for section, keys in data.items():
        rules = SCHEMA.get(section)
        if rules is None:
            raise BadInput(f"{path}: unknown section [{section}] "
                           f"(known: {', '.join(SCHEMA)})")
        if not isinstance(keys, dict):
            raise BadInput(f"{path}: [{section}] must be a table of keys")
        for key, value in keys.items():
            rule = rules.get(key)
            if rule is None:
                raise BadInput(f"{path}: unknown key [{section}] {key} "
                               f"(known: {', '.join(rules)})")
            expected = rule(value)
            if expected:
                raise BadInput(f"{path}: [{section}] {key} must be {expected}, not {value!r}")
