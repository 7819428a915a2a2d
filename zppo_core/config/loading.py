"""Building a :class:`~zppo_core.config.schema.Config` from YAML / nested data / dotted
overrides, rejecting unknown keys and wrong types by their dotted name, and dumping it back.

Only :func:`load_config` touches the file system (it reads the YAML file it is given).
"""

from __future__ import annotations

import math
import re
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, get_type_hints

from zppo_core.config.schema import Config, ConfigError, _to_plain


def _build(cls: type, data: dict[str, Any], path: str) -> Any:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys by their dotted name."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"unknown config key(s): {', '.join(where + k for k in unknown)} "
            f"(valid: {', '.join(sorted(names))})"
        )
    kwargs: dict[str, Any] = {}
    defaults = cls() if cls is not Config else None
    for name, value in data.items():
        typ = hints[name]
        key = f"{path}.{name}" if path else name
        if is_dataclass(typ):
            base = _to_plain(getattr(defaults, name)) if defaults is not None else _to_plain(typ())
            merged = _deep_merge(base, value) if isinstance(value, dict) else value
            kwargs[name] = _build(typ, merged, key)
        else:
            kwargs[name] = _coerce(value, typ, key)
    if cls is Config:
        return Config(**kwargs)
    return cls(**kwargs)


#: YAML 1.2 core-schema floats that YAML 1.1 (PyYAML) reads as strings: ``2e-4``, ``1E5``, ``.5``
_YAML12_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_YAML12_SPECIAL = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}


def _yaml12_number(value: Any) -> Any:
    """``"2e-4"`` -> ``0.0002`` (and ``.inf``/``.nan``, which validation then refuses); other
    values unchanged. Numbers are parsed the way YAML 1.2 reads them."""
    if isinstance(value, str):
        text = value.strip()
        if _YAML12_FLOAT.match(text):
            return float(text)
        if text.lower() in _YAML12_SPECIAL:
            return _YAML12_SPECIAL[text.lower()]
    return value


def _coerce(value: Any, typ: Any, key: str) -> Any:
    origin = getattr(typ, "__origin__", None)
    if origin is Literal:  # validate() checks value and type, by name (schema._check_choices)
        return value
    if typ in (int, float):
        value = _yaml12_number(value)
    try:
        if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if typ is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if typ is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if typ is bool and isinstance(value, bool):
            return value
        if typ is str and isinstance(value, str):
            return value
        if origin is tuple and isinstance(value, (list, tuple)):
            return tuple(float(v) for v in value)
        if origin is list and isinstance(value, (list, tuple)):
            return list(value)
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"{key}: expected {getattr(typ, '__name__', typ)}, got {value!r}")


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _set_dotted(d: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = d
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
        if not isinstance(cur, dict):
            raise ConfigError(f"override {dotted}: {p} is not a section")
    cur[parts[-1]] = value


def config_from_dict(data: dict[str, Any], overrides: dict[str, Any] | None = None) -> Config:
    """Build a :class:`Config` from nested plain data plus dotted overrides ``{"zppo.method": "grpo"}``."""
    merged = _deep_merge(_to_plain(Config()), data or {})
    for k, v in (overrides or {}).items():
        _set_dotted(merged, k, v)
    return _build(Config, merged, "")


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Load a YAML config file (paper defaults for every key it does not set)."""
    import yaml  # local import keeps the module import-light

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:  # also tags such as !!python/object, which safe_load refuses
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        what = " ".join(str(getattr(e, "problem", "") or e).split())
        raise ConfigError(f"{p}: not a plain YAML config{at}: {what}") from None
    try:
        return config_from_dict(data, overrides)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None


def dump_config(cfg: Config, *, redacted: bool = False) -> str:
    """The resolved config as YAML text. ``redacted=True`` (every stored artifact): credentials
    masked (:func:`zppo_core.redact.redact`); the unredacted text is only for the trainer's input."""
    import yaml

    data = cfg.to_dict()
    if redacted:
        from zppo_core.redact import redact

        data = redact(data)
    return yaml.safe_dump(data, sort_keys=False)


def replace(cfg: Config, **dotted: Any) -> Config:
    """Copy of ``cfg`` with dotted overrides given as ``replace(cfg, **{"zppo.method": "grpo"})``."""
    return config_from_dict(cfg.to_dict(), dotted)


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["algo.iterations=1", "eval.benchmarks=[AI2D]"]`` -> dotted overrides (values as YAML),
    the ``--set KEY=VALUE`` syntax of every ``zppo`` subcommand."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({e})") from None
    return out
