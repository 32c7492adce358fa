"""Training configurations: TOML files with CLI overrides (`--set section.key=value`)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from llmscisci.errors import UserError
from llmscisci.paths import read_toml


def load_config(path: str | Path | None, defaults: dict, overrides: list[str] | None = None) -> dict:
    """defaults <- TOML file <- overrides. Unknown keys in the file or the overrides are errors."""
    cfg = copy.deepcopy(defaults)
    if path is not None:
        _merge(cfg, read_toml(path, "config"), str(path))
    for item in overrides or []:
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected section.key=value")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = {}
        parts = key.strip().split(".")
        cur = node
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
        cur[parts[-1]] = value
        _merge(cfg, node, "--set")
    return cfg


def resolve_config(path, defaults: dict, overrides: list[str] | None = None, *, data_dir=None, out_dir=None,
                   **sections) -> dict:
    """`load_config` plus the command-line options every trainer shares (data folder, output folder),
    and any further `section={key: value}` overrides given directly."""
    cfg = load_config(path, defaults, overrides)
    if data_dir:
        cfg["data"]["data_dir"] = str(data_dir)
    if out_dir:
        cfg["output"]["dir"] = str(out_dir)
    for section, values in sections.items():
        cfg[section].update({k: v for k, v in values.items() if v is not None})
    return cfg


def _merge(base: dict, new: dict, where: str, prefix: str = "") -> None:
    for k, v in new.items():
        name = f"{prefix}{k}"
        if k not in base:
            raise UserError(f"{where}: unknown setting {name!r} (known: {', '.join(sorted(base))})")
        if isinstance(base[k], dict) and not isinstance(v, dict):
            raise UserError(f"{where}: {name!r} is a section, not a value")
        if isinstance(base[k], dict):
            _merge(base[k], v, where, prefix=f"{name}.")
        else:
            base[k] = v
