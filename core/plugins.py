"""The plugin manager: loads every plugin of the ``report2label`` entry-point group.

Built-in plugins are entry points of this very package, so they load exactly like third-party
ones. ``R2L_PLUGINS`` (comma-separated entry-point or distribution names) restricts loading;
set to an empty string it loads none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from types import ModuleType
from typing import NamedTuple

import pluggy

from . import hookspecs

GROUP = "report2label"
ENV_VAR = "R2L_PLUGINS"
#: Parts of core registered through the hooks like any plugin, always (R2L_PLUGINS does not apply).
DEFAULT_PLUGINS = {"local_engine": "report2label.core.labelling.engines"}


@dataclass(frozen=True)
class PluginInfo:
    name: str
    package: str
    version: str
    hooks: tuple[str, ...]


pm = pluggy.PluginManager(GROUP)
pm.add_hookspecs(hookspecs)
_dists: dict[str, tuple[str, str]] = {}


def _allowed() -> set[str] | None:
    value = os.environ.get(ENV_VAR)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def load_entry_points() -> None:
    """Register the default plugins and every allowed plugin of the entry-point group (idempotent)."""
    for name, module in DEFAULT_PLUGINS.items():
        if not pm.has_plugin(name):
            pm.register(import_module(module), name=name)
    allowed = _allowed()
    for ep in entry_points(group=GROUP):
        dist_name = ep.dist.name if ep.dist else ""
        if allowed is not None and ep.name not in allowed and dist_name not in allowed:
            continue
        if pm.has_plugin(ep.name):
            continue
        pm.register(ep.load(), name=ep.name)
        _dists[ep.name] = (dist_name, ep.dist.version if ep.dist else "")


def register(plugin: object, name: str | None = None) -> None:
    """Register an in-process plugin (a module or object with ``@hookimpl`` functions)."""
    pm.register(plugin, name=name)


def plugin_infos() -> list[PluginInfo]:
    """Every registered plugin with its distribution, version and implemented hooks."""
    load_entry_points()
    infos = []
    for name, plugin in pm.list_name_plugin():
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))
        package, version = _dists.get(name, ("", ""))
        if not package and isinstance(plugin, ModuleType):
            package = plugin.__name__
        infos.append(PluginInfo(name, package, version, hooks))
    return sorted(infos, key=lambda info: info.name)


class Registration(NamedTuple):
    """One ``register(...)`` call: the plugin that made it and the arguments it passed."""

    plugin: str
    args: tuple


def plugin_label(name: str) -> str:
    """``plugin 'name'``, with its distribution and version where it came from an entry point."""
    package, version = _dists.get(name, ("", ""))
    return f"plugin {name!r}" + (f" ({' '.join(filter(None, (package, version)))})" if package else "")


def collect(hook_name: str) -> list[Registration]:
    """Call ``hook_name`` on every plugin and return each ``register`` call with the plugin that made it.

    Each plugin's implementation gets a ``register`` of its own, so a wrong registration can be
    blamed on the plugin that made it. Implementations run in pluggy's order (last registered first).
    """
    load_entry_points()
    items: list[Registration] = []
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        if impl.hookwrapper or impl.wrapper:
            continue

        def register(*args, _plugin: str = impl.plugin_name) -> None:
            items.append(Registration(_plugin, args))

        impl.function(**{name: register for name in impl.argnames})
    return items
