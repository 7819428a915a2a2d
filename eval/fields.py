"""Field mappings: upstream dataset row -> :class:`~eval.items.EvalItem`.

Most benchmarks are described by a declarative :class:`FieldMap` (which column holds the
question, the options, the gold answer and in what form, the images...). The few whose rows
need logic (GPQA's option shuffle, CharXiv's two question kinds, BabyVision's two answer kinds)
have an adapter function in :mod:`eval.adapters` that still uses these helpers.
Bad rows raise :class:`RowError` naming the benchmark, row and field.
"""

from __future__ import annotations

import ast
import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from eval.items import LETTERS, EvalItem, letter


class RowError(ValueError):
    """A dataset row does not match the benchmark's declared schema."""


@dataclass(frozen=True)
class FieldMap:
    """Where each internal field lives in the upstream row.

    ``options``: a column holding a list (or its JSON / Python-literal string, or a dict
    letter->text, or a "A. x; B. y" string), or a tuple of columns, one per option (C-Eval's
    ``A``..``D``). ``gold_kind``: how the gold column encodes the answer — ``letter``,
    ``index`` (0-based int -> letter), ``option_text`` (the text of the right option -> letter)
    or ``text`` (kept as is). ``answer_type_from``/``answer_type_map``: a column whose value
    picks the answer type per row (e.g. MathVista's ``question_type``).
    """

    question: str
    gold: str
    options: str | tuple[str, ...] | None = None
    gold_kind: str = "text"
    answer_type: str = "text"
    answer_type_from: str | None = None
    answer_type_map: tuple[tuple[str, str], ...] = ()
    images: tuple[str, ...] = ()
    video: str | None = None
    item_id: str | None = None
    messages: str | None = None
    meta: tuple[str, ...] = ()
    #: strip a leading "A. " / "(A) " from each option text (Video-MME writes them in)
    strip_option_prefix: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def need(row: dict[str, Any], col: str, where: str) -> Any:
    """``row[col]``, or a :class:`RowError` naming the missing field."""
    if col not in row:
        raise RowError(f"{where}: missing field {col!r} (row has {sorted(row)[:12]})")
    return row[col]


_OPT_PREFIX = re.compile(r"^\s*\(?([A-Z])[\.\):]\s*")


def parse_options(value: Any, where: str, strip_prefix: bool = False) -> list[str]:
    """Normalise an options field to a list of option texts."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text[0] in "[{":
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                try:
                    value = ast.literal_eval(text)
                except (ValueError, SyntaxError) as e:
                    raise RowError(f"{where}: cannot parse options {text[:60]!r}") from e
        else:  # "A. 3; B. 4; C. 5" (WeMath)
            parts = re.split(r"[;\n]\s*(?=\(?[A-Z][\.\):])", text)
            return [_OPT_PREFIX.sub("", p).strip() for p in parts if p.strip()]
    if isinstance(value, dict):
        value = [value[k] for k in sorted(value)]
    if not isinstance(value, (list, tuple)):
        if hasattr(value, "tolist"):
            value = value.tolist()
        else:
            raise RowError(f"{where}: options must be a list, got {type(value).__name__}")
    out = [str(v) for v in value]
    if strip_prefix:
        out = [_OPT_PREFIX.sub("", o, count=1).strip() for o in out]
    return out


def gold_to_letter(gold: Any, kind: str, options: list[str], where: str) -> str:
    """Encode the gold answer as an option letter."""
    if kind == "letter":
        g = str(gold).strip().strip("()").upper()
        if len(g) != 1 or g not in LETTERS:
            raise RowError(f"{where}: gold {gold!r} is not an option letter")
        return g
    if kind == "index":
        try:
            return letter(int(gold))
        except (TypeError, ValueError) as e:
            raise RowError(f"{where}: gold {gold!r} is not an option index") from e
    if kind == "option_text":
        texts = [o.strip() for o in options]
        if str(gold).strip() not in texts:
            raise RowError(f"{where}: gold {gold!r} is not one of the options {texts}")
        return letter(texts.index(str(gold).strip()))
    raise RowError(f"{where}: unknown gold_kind {kind!r}")


def decode_image_field(value: Any, where: str) -> list[Any]:
    """An image column's value as a list (None/"" -> []); data URIs are decoded to bytes."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in decode_image_field(item, where)]
    if isinstance(value, str) and value.startswith("data:image"):
        try:
            return [base64.b64decode(value.split(",", 1)[1])]
        except (IndexError, ValueError) as e:
            raise RowError(f"{where}: bad data-URI image") from e
    return [value]


def map_row(fm: FieldMap, row: dict[str, Any], index: int, subset: str, bench: str) -> EvalItem:
    """Apply a declarative :class:`FieldMap` to one row."""
    where = f"{bench}[{subset or 'default'}] row {index}"
    question = str(need(row, fm.question, where) or "")
    options: list[str] = []
    if isinstance(fm.options, tuple):
        options = [str(need(row, c, where)) for c in fm.options if row.get(c) not in (None, "")]
    elif fm.options:
        options = parse_options(need(row, fm.options, where), where, fm.strip_option_prefix)
    answer_type = fm.answer_type
    if fm.answer_type_from:
        raw = str(need(row, fm.answer_type_from, where))
        lut = dict(fm.answer_type_map)
        if raw not in lut:
            raise RowError(f"{where}: {fm.answer_type_from}={raw!r} not in {sorted(lut)}")
        answer_type = lut[raw]
    gold_raw = need(row, fm.gold, where)
    if gold_raw is None or (isinstance(gold_raw, str) and not gold_raw.strip()):
        raise RowError(f"{where}: empty gold field {fm.gold!r}")
    if answer_type == "mc":
        gold = gold_to_letter(gold_raw, fm.gold_kind, options, where)
    elif isinstance(gold_raw, (list, tuple)) or hasattr(gold_raw, "tolist"):
        gold = json.dumps(list(gold_raw.tolist() if hasattr(gold_raw, "tolist") else gold_raw))
    else:
        gold = str(gold_raw)
    images: list[Any] = []
    for col in fm.images:
        images.extend(decode_image_field(row.get(col), where))
    item_id = str(row[fm.item_id]) if fm.item_id and fm.item_id in row else str(index)
    messages = list(need(row, fm.messages, where)) if fm.messages else []
    meta = {k: row.get(k) for k in fm.meta}
    video = str(need(row, fm.video, where)) if fm.video else None
    return EvalItem(
        item_id=f"{subset}/{item_id}" if subset else item_id,
        question=question,
        gold=gold,
        answer_type=answer_type,
        options=options,
        images=images,
        video=video,
        messages=messages,
        subset=subset,
        meta=meta,
    )
