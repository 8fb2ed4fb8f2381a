"""Name -> plugin tables that fill themselves from the modules of their packages.

A plugin module registers what it defines when it is imported (`register_loss(...)`,
`register_term(...)`, `register_model(...)`, ...). A registry imports every module of its
packages the first time it is read, so a new plugin is one new file: nothing else lists it.
Plugins outside the package register themselves the same way when an experiment file
imports them.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Generic, Iterator, TypeVar

from gan_jax.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Plugins of one kind by name; `config_key` is the config key that selects one (for messages)."""

    def __init__(self, kind: str, config_key: str, packages: tuple[str, ...] = ()):
        self.kind = kind
        self.config_key = config_key
        self._packages = packages
        self._entries: dict[str, T] = {}
        self._loaded = not packages

    def register(self, name: str, entry: T) -> T:
        previous = self._entries.get(name)
        if previous is not None and previous != entry:
            raise ValueError(f"{self.kind} {name!r} is registered twice ({previous!r} and {entry!r}); "
                             "give the new one another name.")
        self._entries[name] = entry
        return entry

    def load(self) -> None:
        """Imports every module of the registry's packages (once), which registers their plugins."""
        if self._loaded:
            return
        self._loaded = True
        for package_name in self._packages:
            package = importlib.import_module(package_name)
            for info in pkgutil.walk_packages(package.__path__, package_name + "."):
                importlib.import_module(info.name)

    def get(self, name: str) -> T:
        self.load()
        if name not in self._entries:
            near = difflib.get_close_matches(name, list(self._entries), n=2)
            hint = f" Did you mean {' or '.join(map(repr, near))}?" if near else ""
            raise ConfigError(f"Unknown {self.kind} {name!r} (config key {self.config_key!r}).{hint} "
                              f"Known: {', '.join(self.names())}.")
        return self._entries[name]

    def names(self) -> list[str]:
        self.load()
        return sorted(self._entries)

    def values(self) -> list[T]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: str) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
