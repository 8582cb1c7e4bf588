"""Extra garbage-collection roots from other parts of the studio.

The store's own roots are the ids written in refs. A part that keeps object ids only in
the catalog (e.g. the farm's task outputs) registers a provider here, in a module named
``vstudio.<part>.store_roots``; ``vstudio store gc`` imports those modules and passes
every id they yield as live::

    from vstudio.store.roots import register_roots

    @register_roots
    def farm_outputs(studio):  # studio: vstudio.studio.Studio
        yield from ids_in_the_catalog(studio.engine)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from importlib import import_module
from typing import Any

log = logging.getLogger("vstudio.store")

RootProvider = Callable[[Any], Iterable[str]]
_PROVIDERS: list[RootProvider] = []
PROVIDER_MODULES = ["vstudio.repo.store_roots", "vstudio.farm.store_roots",
                    "vstudio.render.store_roots", "vstudio.worker.store_roots"]


def register_roots(fn: RootProvider) -> RootProvider:
    _PROVIDERS.append(fn)
    return fn


def live_ids(studio: Any) -> Iterator[str]:
    """Every id the registered providers name (their modules are imported first)."""
    for name in PROVIDER_MODULES:
        try:
            import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
    for fn in _PROVIDERS:
        yield from fn(studio)
