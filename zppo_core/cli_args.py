"""Arguments every ``zppo`` command spells the same way.

One output flag: ``--output FOLDER`` on every command that writes a folder (``pipeline``,
``train``, ``curate``, ``eval``, ``report``). The spellings older releases used (``--out``, and
``report``'s ``--output-dir`` for the run folder it reads, now ``--run-folder``) still work and
print one deprecation line.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


class DeprecatedAlias(argparse.Action):
    """An old option spelling: stores like the new one, after one line on stderr."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"{parser.prog}: warning: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_renamed(p: argparse.ArgumentParser, new: str, old: tuple[str, ...], **kwargs: Any) -> None:
    """``new`` as documented (``kwargs`` as for ``add_argument``), ``old`` spellings hidden aliases."""
    dest = new.lstrip("-").replace("-", "_")
    p.add_argument(new, dest=dest, **kwargs)
    for o in old:
        p.add_argument(o, dest=dest, action=DeprecatedAlias, new=new, help=argparse.SUPPRESS)


def add_output(p: argparse.ArgumentParser, help: str, default: str | None = None) -> None:
    """``--output`` (``--out`` still accepted)."""
    add_renamed(p, "--output", ("--out",), default=default, help=help, metavar="FOLDER")


__all__ = ["DeprecatedAlias", "add_output", "add_renamed"]
