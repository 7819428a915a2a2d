"""TEDS / STEDS of OCRBench v2's parsing tasks, hand-computed from the definitions in the authors'
TEDS_metric.py: TEDS = 1 - d / max(#elements under <table>), insert = delete = 1, a renamed
<td> costs the Levenshtein distance of its token lists over the longer one; STEDS compares the
heading trees of two documents."""

from __future__ import annotations

import pytest

from eval import ocrbench_v2 as ocr
from eval import teds

G = "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>"  # 2 tr + 4 td = 6


def _t(pred: str, gold: str = G) -> float:
    return teds.teds(teds.wrap_html_table(pred), teds.wrap_html_table(gold))


def test_teds_cases() -> None:
    assert _t(G) == 1.0
    assert _t(G.replace("<td>d</td>", "<td>e</td>")) == pytest.approx(1 - 1 / 6)  # one cell wrong
    assert _t(G.replace("<td>d</td>", "<td>dd</td>")) == pytest.approx(1 - 0.5 / 6)  # lev 1 over 2 tokens
    assert _t("<table><tr><td>a</td><td>b</td></tr></table>") == pytest.approx(1 - 3 / 6)  # a row missing
    assert _t(G.replace("<td>a</td><td>b</td>", '<td colspan="2">a</td>')) == pytest.approx(1 - 2 / 6)
    # an inner tag is a token of the cell: ['<b>', 'x', '</b>'] vs ['x'] -> 2/3; 3 elements under <table>
    one = "<table><tr><td>x</td></tr></table>"
    assert _t(one, one.replace("x", "<b>x</b>")) == pytest.approx(1 - (2 / 3) / 3)


def test_tree_edit_distance_is_optimal_on_a_reordering() -> None:
    # a b c -> b c: one deletion, not three renames
    t1 = ("r", [("a", []), ("b", []), ("c", [])])
    t2 = ("r", [("b", []), ("c", [])])
    assert teds.tree_edit_distance(t1, t2, lambda n: n[1], lambda x, y: float(x[0] != y[0])) == 1.0


def test_markdown_tables() -> None:
    md = "| h1 | h2 |\n|---|---|\n| a | b |"
    assert teds.markdown_table_to_html(md) == (
        "<html><body><table><tr><td>h1</td><td>h2</td></tr><tr><td>a</td><td>b</td></tr></table></body></html>")
    meta = {"type": "table parsing en", "answers": [md], "question": "Convert the table to Markdown."}
    assert ocr.score(md, meta) == 1.0
    assert ocr.score("| h1 | h2 |\n|---|---|\n| a | c |", meta) == pytest.approx(1 - 1 / 6)


def test_table_parsing_html_rows() -> None:
    meta = {"type": "table parsing en", "answers": [G], "question": "Write the table in HTML."}
    assert ocr.score("Here it is:\n" + G, meta) == 1.0
    assert ocr.score("| a | b |", meta) == 0.0  # no <table> / <body> in an HTML answer
    assert ocr.score(G, {**meta, "type": "table parsing cn", "question": "表格"}) == 1.0


def test_chart_parsing() -> None:
    gold = '{"Year": "2020", "Sales": "12"}'
    meta = {"type": "chart parsing en", "answers": [gold]}
    assert ocr.score("```python\nchart = {'Year': '2020', 'Sales': '12'}\n```", meta) == 1.0
    # one value wrong: its cell "1 3" vs "1 2" (characters joined by spaces) -> lev 1 over 3 tokens
    assert ocr.score("{'Year': '2020', 'Sales': '13'}", meta) == pytest.approx(1 - (1 / 3) / 6)
    assert ocr.score("no dict", meta) == 0.0


def test_document_parsing_steds() -> None:
    gold = "# Title\nline one\nline two"  # ROOT, TITLE, Title, 2 lines = 5 nodes
    meta = {"type": "document parsing en", "answers": [gold]}
    assert ocr.score(gold, meta) == 1.0
    assert ocr.score("# Title\nline one", meta) == pytest.approx(1 - 1 / 5)
    assert ocr.score("# Title\nother words\nmore words", meta) == 1.0  # line labels only need words
    assert ocr.score("# Title\nline one\n", meta) == pytest.approx(1 - 1 / 5)  # an empty line renames at 1
    assert teds.pre_clean("a_b *c* x ##y") == "a b  c  xy"


def _dp(a, b) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def test_bit_parallel_levenshtein_equals_the_dynamic_programme() -> None:
    import random

    from eval.metrics_det import levenshtein

    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3 and levenshtein("abc", "") == 3
    assert levenshtein(["<b>", "x", "</b>"], ["x"]) == 2
    rng = random.Random(0)
    for _ in range(500):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 70)))
        b = "".join(rng.choice("abcd") for _ in range(rng.randint(0, 70)))
        assert levenshtein(a, b) == _dp(a, b)
