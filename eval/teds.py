"""Tree-edit metrics of OCRBench v2's parsing tasks, standard library only: TEDS for tables and
charts (PubTabNet's metric as the OCRBench v2 authors use it, ``TEDS_metric.py``) and STEDS for
document parsing (``doc_parsing_evaluation``). The tree edit distance is Zhang-Shasha's
algorithm, which computes the same optimal distance as the APTED library the authors call.

TEDS = 1 - d(pred, gold) / max(#elements): insert / delete cost 1; renaming a node costs 1 when
tag, colspan or rowspan differ, and for two ``<td>`` cells the Levenshtein distance of their
token lists (characters, with inner tags as tokens) over the longer list.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Callable, Sequence

from eval.metrics_det import levenshtein

_VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr", "source"})


@dataclass
class Element:
    """A parsed HTML element: ``text`` before the first child, ``tail`` after the end tag."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list["Element"] = field(default_factory=list)
    text: str | None = None
    tail: str | None = None

    def descendants(self) -> int:
        return sum(1 + c.descendants() for c in self.children)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(el)
        if tag not in _VOID:
            self.stack.append(el)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if any(el.tag == tag for el in self.stack[1:]):
            while self.stack[-1].tag != tag:
                self.stack.pop()
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        parent = self.stack[-1]
        if parent.children:
            last = parent.children[-1]
            last.tail = (last.tail or "") + data
        else:
            parent.text = (parent.text or "") + data


def parse_html(text: str) -> Element:
    """The document tree of ``text`` (lenient: unmatched end tags are ignored)."""
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def _first(el: Element, tag: str) -> Element | None:
    for c in el.children:
        if c.tag == tag:
            return c
        hit = _first(c, tag)
        if hit is not None:
            return hit
    return None


def body_table(doc: Element) -> Element | None:
    """The ``<table>`` directly under ``<body>`` (the official ``body/table``)."""
    body = _first(doc, "body") or doc
    return next((c for c in body.children if c.tag == "table"), None)


# ------------------------------------------------------------------------ tree edit distance
def tree_edit_distance(t1: Any, t2: Any, children: Callable[[Any], Sequence[Any]],
                       rename: Callable[[Any, Any], float]) -> float:
    """Zhang-Shasha ordered tree edit distance (insert = delete = 1)."""
    def post(root: Any) -> tuple[list[Any], list[int]]:
        nodes: list[Any] = []
        lml: list[int] = []

        def walk(n: Any) -> int:
            kids = children(n)
            first = [walk(c) for c in kids][0] if kids else len(nodes)
            nodes.append(n)
            lml.append(first)
            return first
        walk(root)
        return nodes, lml

    n1, l1 = post(t1)
    n2, l2 = post(t2)
    keys1 = sorted({v: i for i, v in enumerate(l1)}.values())  # the highest node per leftmost leaf
    keys2 = sorted({v: j for j, v in enumerate(l2)}.values())
    td = [[0.0] * len(n2) for _ in n1]
    for i in keys1:
        for j in keys2:
            li, lj = l1[i], l2[j]
            if li == i and lj == j:  # two leaves: rename, or delete + insert
                td[i][j] = min(2.0, rename(n1[i], n2[j]))
                continue
            _forest(i, j, l1, l2, n1, n2, td, rename)
    return td[-1][-1]


def _forest(i: int, j: int, l1: list[int], l2: list[int], n1: list[Any], n2: list[Any],
            td: list[list[float]], rename: Callable[[Any, Any], float]) -> None:
    """Zhang-Shasha forest distances of keyroots ``i`` x ``j``; fills ``td`` for the subtree
    pairs on their leftmost paths."""
    li, lj = l1[i], l2[j]
    fd = [[float(x + y) if x == 0 or y == 0 else 0.0 for y in range(j - lj + 2)] for x in range(i - li + 2)]
    for x in range(li, i + 1):
        dx = x - li + 1
        row, prev = fd[dx], fd[dx - 1]
        on_path_x = l1[x] == li
        for y in range(lj, j + 1):
            dy = y - lj + 1
            best = prev[dy] + 1
            if row[dy - 1] + 1 < best:
                best = row[dy - 1] + 1
            if on_path_x and l2[y] == lj:
                cand = prev[dy - 1] + rename(n1[x], n2[y])
                row[dy] = cand if cand < best else best
                td[x][y] = row[dy]
            else:
                cand = fd[l1[x] - li][l2[y] - lj] + td[x][y]
                row[dy] = cand if cand < best else best


# ---------------------------------------------------------------------------------- TEDS
@dataclass
class _Cell:
    tag: str
    colspan: int | None = None
    rowspan: int | None = None
    content: list[str] | None = None
    kids: list["_Cell"] = field(default_factory=list)


def _tokens(el: Element) -> list[str]:
    """``<tag>``, the text's characters, the children's tokens, ``</tag>``, then (not for a
    ``<td>``) the tail's characters — PubTabNet's cell tokenisation."""
    out = [f"<{el.tag}>", *(el.text or "")]
    for c in el.children:
        out += _tokens(c)
    out.append(f"</{el.tag}>")
    if el.tag != "td":
        out += list(el.tail or "")
    return out


def _span(el: Element, name: str) -> int:
    try:
        return int(el.attrs.get(name, "1"))
    except ValueError:
        return 1


def _table_tree(el: Element) -> _Cell:
    if el.tag == "td":
        return _Cell("td", _span(el, "colspan"), _span(el, "rowspan"), _tokens(el)[1:-1])
    return _Cell(el.tag, kids=[_table_tree(c) for c in el.children])


def _rename(a: _Cell, b: _Cell) -> float:
    if (a.tag, a.colspan, a.rowspan) != (b.tag, b.colspan, b.rowspan):
        return 1.0
    if a.tag == "td" and (a.content or b.content):
        ca, cb = a.content or [], b.content or []
        return levenshtein(ca, cb) / max(len(ca), len(cb))
    return 0.0


def teds(pred_html: str, gold_html: str) -> float:
    """TEDS of two HTML documents whose ``body/table`` is compared; 0 when either lacks one."""
    if not pred_html or not gold_html:
        return 0.0
    pt, gt = body_table(parse_html(pred_html)), body_table(parse_html(gold_html))
    if pt is None or gt is None:
        return 0.0
    n = max(pt.descendants(), gt.descendants())
    if n == 0:
        return 0.0
    dist = tree_edit_distance(_table_tree(pt), _table_tree(gt), lambda c: c.kids, _rename)
    return 1.0 - dist / n


def wrap_html_table(html: str) -> str:
    """Add the missing ``<table>``, ``<body>`` and ``<html>`` tags (``wrap_html_table``)."""
    html = html.replace("\n", "")
    has_open, has_close = "<table" in html, "</table>" in html
    if has_open and not has_close:
        html += "</table>"
    elif has_close and not has_open:
        html = "<table>" + html
    elif not has_open and not has_close:
        html = f"<table>{html}</table>"
    if "<body>" not in html:
        html = f"<body>{html}</body>"
    if "<html>" not in html:
        html = f"<html>{html}</html>"
    return html


def rows_to_html(rows: list[list[str]]) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<html><body><table>{cells}</table></body></html>"


def markdown_table_to_html(md: str) -> str:
    """A markdown table (header, separator, rows) as the official HTML for TEDS; a cell of
    spaces becomes one space."""
    md = md.strip("`markdown").strip("`").strip()  # the official character-set strip
    lines = md.split("\n")
    rows = []
    for line in [lines[0], *lines[2:]]:
        cells = line.strip().split("|")[1:-1]
        rows.append([c.strip() if set(c) != {" "} else " " for c in cells])
    return rows_to_html(rows)


def html_prediction(pred: str) -> str | None:
    """The prediction from its ``<body`` (else ``<table``) on, newlines removed; None if neither."""
    flat = pred.replace("\n", "")
    for marker in ("<body", "<table"):
        if marker in flat:
            return flat[flat.index(marker):]
    return None


def table_score(pred: str, gold: str, markdown: bool) -> float:
    """Table parsing: TEDS of the HTML (or markdown) table in the prediction vs the gold."""
    if markdown:
        return teds(markdown_table_to_html(pred), markdown_table_to_html(gold))
    table = html_prediction(pred)
    return 0.0 if table is None else teds(wrap_html_table(table), wrap_html_table(gold))


# --------------------------------------------------------------------------- chart parsing
#: what a malformed JSON / Python literal raises (deep nesting and huge numbers included)
LITERAL_ERRORS = (ValueError, SyntaxError, TypeError, RecursionError, MemoryError)


def parse_literal(text: str) -> Any:
    """``text`` read as JSON, else as a Python literal; ``None`` when it is neither."""
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except LITERAL_ERRORS:
            continue
    return None


def parse_multi_dict(pred: str) -> dict[Any, Any]:
    """A chart prediction as a (possibly nested) dict (``convert_str_to_multi_dict``): the longest
    fenced block, a leading ``name =`` and ``#`` comments removed, cut after the last ``}``."""
    blocks = re.findall(r"```(?:python|json)?\n(.*?)\n```", pred, re.DOTALL | re.IGNORECASE)
    content = max(blocks, key=len) if blocks else pred.strip()
    content = re.sub(r"^\s*\w+\s*=\s*", "", content.strip(), count=1)
    content = re.sub(r"#.*", "", content)
    if "}" in content:
        content = content[:content.rfind("}") + 1]
    try:
        data = ast.literal_eval(content)
    except LITERAL_ERRORS:
        return {}
    return data if isinstance(data, dict) else {}


def dict_to_html(data: dict[Any, Any]) -> str:
    """One row per key; the value's characters joined by spaces, as the official code does."""
    rows = [[str(k), " ".join(v if isinstance(v, str) else str(v))] for k, v in data.items()]
    return rows_to_html(rows)


def chart_score(pred: str, gold: Any) -> float:
    """Chart parsing: TEDS of the predicted dict's table vs the gold dict's table."""
    if isinstance(gold, str):
        gold = parse_literal(gold)
    d = parse_multi_dict(pred) if pred else {}
    if not d or not isinstance(gold, dict):
        return 0.0
    return teds(dict_to_html(d), dict_to_html(gold))


# ------------------------------------------------------------------------ document parsing
@dataclass
class _Line:
    label: str
    kids: list["_Line"] = field(default_factory=list)

    def find(self, label: str) -> "_Line | None":
        if self.label == label:
            return self
        for k in self.kids:
            hit = k.find(label)
            if hit is not None:
                return hit
        return None

    def size(self) -> int:
        return 1 + sum(k.size() for k in self.kids)


_PRE_CLEAN: tuple[tuple[str, str], ...] = (
    (r"<bos>|<eos>|<pad>|<unk>", ""), (r"\s##(\S)", r"\1"), (r"\\\s", r"\\"), (r"\s\*\s\*\s", "**"),
    (r"{\s", "{"), (r"\s}", "}"), (r"\\begin\s", r"\\begin"), (r"\\end\s", r"\\end"),
    (r"\\end{table}", r"\\end{table} \n\n"),
)


def pre_clean(line: str) -> str:
    """The official line clean-up before building the document tree."""
    for pat, rep in _PRE_CLEAN:
        line = re.sub(pat, rep, line)
    return line.replace("\n", " ").replace("*", " ").replace("_", " ")


def doc_tree(text: str) -> _Line:
    """ROOT -> [TITLE -> lines before the first heading, heading -> its lines, ...]; ``#``
    lines are headings (``#`` removed); a line goes under the first node labelled like the
    last heading."""
    root = _Line("ROOT", [_Line("TITLE")])
    last = ""
    for line in (pre_clean(x) for x in text.split("\n")):
        if line.startswith("#"):
            last = line.replace("#", "")
            root.kids.append(_Line(last))
        else:
            parent = root.find("TITLE" if last == "" else last) or root
            parent.kids.append(_Line(line))
    return root


def steds(pred: str, gold: str) -> float:
    """Document parsing (``doc_parsing_evaluation``): 1 - d / max(#nodes) over the two document
    trees; insert / delete cost 1, renaming costs 1 when either line has no words, else 0."""
    pt, gt = doc_tree(pred), doc_tree(gold)
    d = tree_edit_distance(pt, gt, lambda n: n.kids,
                           lambda a, b: 0.0 if a.label.split() and b.label.split() else 1.0)
    return 1.0 - d / max(pt.size(), gt.size())


# ------------------------------------------------------------------------- OCRBench v2 entry
def parsing_score(task: str, pred: str, answers: Sequence[str], question: str) -> float:
    """OCRBench v2 parsing tasks. Table parsing: TEDS of the HTML table (the question asks for
    HTML; always for Chinese) or of the markdown table (the question asks for markdown); a
    question naming neither is read as HTML when the reply holds ``<table``, else as markdown.
    Chart parsing: TEDS of the dict tables. Document parsing: STEDS of the heading trees."""
    if not answers or not pred:
        return 0.0
    if task == "chart parsing en":
        return chart_score(pred, answers[0])
    if task.startswith("document parsing"):
        return steds(pred, answers[0])
    q = question.lower()
    if task == "table parsing cn" or "html" in q:
        markdown = False
    elif "markdown" in q:
        markdown = True
    else:
        markdown = "<table" not in pred
    return table_score(pred, answers[0], markdown)
