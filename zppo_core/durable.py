"""Durable file writes: data reaches the disk before a rename makes it visible.

``os.replace`` is atomic, but without ``fsync`` a power loss or kernel crash right after it can
leave the new name pointing at empty or partial files. The writers of checkpoints and of the
final model fsync every file and folder of the new tree, rename, then fsync the parent folder
(which makes the rename itself durable).
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: str | Path) -> None:
    """Flush a folder's entries (new names, renames) to disk."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str | Path) -> None:
    """fsync every file below ``root``, then every folder (deepest first), then ``root``."""
    root = Path(root)
    dirs = [root]
    for cur, subdirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(cur, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        dirs.extend(Path(cur) / d for d in subdirs)
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(d)


def replace_durably(src: str | Path, dst: str | Path) -> None:
    """fsync the tree at ``src``, rename it to ``dst`` (atomic), fsync ``dst``'s parent."""
    fsync_tree(src)
    os.replace(src, dst)
    fsync_dir(Path(dst).parent)


def append_line_durably(path: str | Path, line: str) -> None:
    """Append one line and fsync, so a crash tears at most this line."""
    with open(path, "a") as f:
        f.write(line if line.endswith("\n") else line + "\n")
        f.flush()
        os.fsync(f.fileno())


__all__ = ["append_line_durably", "fsync_dir", "fsync_tree", "replace_durably"]
