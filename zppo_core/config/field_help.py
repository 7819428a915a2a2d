"""Help text of every config field, read from the schema's own comments, and the commented YAML
``configs/paper.yaml`` is generated as.

A field's help is the ``#:`` comment block right above it in :mod:`.schema` (the convention
Sphinx reads as attribute docs), else the comment at the end of its line; a section field
(``model``, ``rollout``...) takes its class docstring's first line. The help therefore lives in
one place, beside the default it explains.
"""

from __future__ import annotations

import ast
import inspect
import io
import textwrap
import tokenize
from dataclasses import fields, is_dataclass
from functools import lru_cache
from typing import Any

#: width of the generated YAML's comment lines
COMMENT_WIDTH = 100


@lru_cache(maxsize=None)
def field_help(cls: type) -> dict[str, str]:
    """``{field name: help}`` of dataclass ``cls`` ("" where its source has no comment).

    ``#: a`` / ``#: b`` above ``x: int = 1`` gives ``{"x": "a b"}``; ``y: int = 2  # c`` gives
    ``{"y": "c"}``; a field whose type is a dataclass without a comment gets that class's
    docstring's first line."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    trailing = {tok.start[0]: tok.string.lstrip("#").strip()
                for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT and not tok.string.startswith("#:")}
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    by_name = {f.name: f for f in fields(cls)}
    out: dict[str, str] = {}
    for st in body.body:
        if not (isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) and st.target.id in by_name):
            continue
        block: list[str] = []
        i = st.lineno - 2
        while i >= 0 and lines[i].strip().startswith("#:"):
            block.insert(0, lines[i].strip()[2:].strip())
            i -= 1
        text = " ".join(block) or trailing.get(st.lineno, "")
        if not text:
            default = _default(by_name[st.target.id])
            if is_dataclass(default):
                text = " ".join((type(default).__doc__ or "").strip().split("\n\n")[0].split())
        out[st.target.id] = text
    return out


def _default(f: Any) -> Any:
    from dataclasses import MISSING

    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else None


def missing_help(obj: Any, prefix: str = "") -> list[str]:
    """Dotted keys of ``obj`` (a config dataclass, recursively) whose help is empty."""
    helps = field_help(type(obj))
    out: list[str] = []
    for f in fields(obj):
        if not helps.get(f.name):
            out.append(prefix + f.name)
        value = getattr(obj, f.name)
        if is_dataclass(value):
            out += missing_help(value, f"{prefix}{f.name}.")
    return out


def _comment(text: str, pad: str) -> list[str]:
    text = text.replace("``", "`")
    return [f"{pad}# {ln}" for ln in textwrap.wrap(text, width=COMMENT_WIDTH - len(pad) - 2)]


def commented_yaml(obj: Any, indent: int = 0) -> str:
    """``obj`` (a config dataclass) as YAML, every key under its help as a comment; the same
    data as :func:`zppo_core.config.dump_config` (``yaml.safe_load`` of both is equal)."""
    import yaml

    from zppo_core.config.schema import _to_plain

    pad = " " * indent
    helps = field_help(type(obj))
    out: list[str] = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            if indent == 0:
                out.append("")
            out += _comment(helps.get(f.name, ""), pad)
            out.append(f"{pad}{f.name}:")
            out.append(commented_yaml(value, indent + 2).rstrip("\n"))
            continue
        out += _comment(helps.get(f.name, ""), pad)
        dumped = yaml.safe_dump({f.name: _to_plain(value)}, sort_keys=False, width=COMMENT_WIDTH)
        out += [pad + ln for ln in dumped.rstrip("\n").splitlines()]
    return "\n".join(out) + "\n"


__all__ = ["COMMENT_WIDTH", "commented_yaml", "field_help", "missing_help"]
