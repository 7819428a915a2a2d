"""What the console shows: one progress line per stage with counts and an ETA, and third-party
noise (Hugging Face / tqdm progress bars, "kernel not found, falling back to torch" warnings)
hidden unless ``--verbose``.

Quiet mode is set through environment variables, so the subprocesses the pipeline starts
(trainer, evaluation workers) inherit it; a variable the user set already is left alone.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from typing import Any

#: set to "1" by ``--verbose`` (subprocesses then keep every third-party line)
VERBOSE_ENV = "ZPPO_VERBOSE"
#: environment of quiet mode: library progress bars off, library logs at error level
QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DATASETS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONWARNINGS": "ignore::UserWarning,ignore::FutureWarning,ignore::DeprecationWarning",
    "VLLM_LOGGING_LEVEL": "WARNING",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}
#: loggers of libraries that print per-step chatter at INFO
_NOISY_LOGGERS = ("alembic", "mlflow", "transformers", "datasets", "huggingface_hub", "accelerate", "httpx", "vllm", "torch.distributed")


def is_verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") == "1"


def configure(verbose: bool | None = None) -> None:
    """Quiet (default) or verbose console for this process and the processes it starts."""
    verbose = is_verbose() if verbose is None else verbose
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
        return
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)
    for category in (UserWarning, FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:  # already imported: its verbosity was read at import time
        import sys

        if "transformers" in sys.modules:
            sys.modules["transformers"].logging.set_verbosity_error()
    except Exception:  # noqa: BLE001 - best effort, never fail a run over log levels
        pass


def format_duration(seconds: float) -> str:
    """``75`` -> ``1:15``; ``3725`` -> ``1:02:05``."""
    s = max(0, int(round(seconds)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def eta_seconds(done: int, total: int, elapsed_s: float) -> float | None:
    """Remaining time at the average pace so far (None before the first unit is done)."""
    if done <= 0 or total <= 0 or elapsed_s <= 0:
        return None
    return max(0.0, elapsed_s * (total - done) / done)


def progress_text(label: str, done: int, total: int | None, unit: str, elapsed_s: float, start: int = 0) -> str:
    """``train tiny/zppo/s0: 3/4 steps (75%) · 0:09 elapsed · ETA 0:03``; ``start``: units done
    before this process began (a resumed run), left out of the pace."""
    if not total:
        return f"{label}: {done} {unit} · {format_duration(elapsed_s)} elapsed"
    eta = eta_seconds(done - start, total - start, elapsed_s)
    pct = int(100 * done / total)
    tail = f" · ETA {format_duration(eta)}" if eta is not None and done < total else ""
    return f"{label}: {done}/{total} {unit} ({pct}%) · {format_duration(elapsed_s)} elapsed{tail}"


class ProgressLine:
    """Calls ``emit(text)`` with :func:`progress_text` at most once per ``every`` fraction of the
    total (and always at the end), so a long stage prints a handful of lines, not one per item;
    ``every=0`` emits on every new count."""

    def __init__(self, label: str, unit: str, emit, every: float = 0.1, clock=time.monotonic, start: int = 0):
        self.label, self.unit, self.emit, self.every, self.clock, self.start = label, unit, emit, every, clock, start
        self.t0 = clock()
        self._last_bucket = -1

    def restart_pace(self, done_before: int, seconds_spent: float) -> None:
        """Measure the pace from here: ``done_before`` units are not counted, and ``seconds_spent``
        of the clock already went into the current unit (e.g. a first training step's time, so the
        model build before it does not inflate the ETA)."""
        self.start, self.t0 = done_before, self.clock() - seconds_spent

    def update(self, done: int, total: int | None) -> None:
        bucket = int(done / total / self.every) if total and self.every > 0 else done
        if bucket == self._last_bucket and not (total and done >= total):
            return
        if total and done >= total and self._last_bucket == -2:
            return
        self._last_bucket = -2 if total and done >= total else bucket
        self.emit(progress_text(self.label, done, total, self.unit, self.clock() - self.t0, self.start))


class Tee:
    """A text stream writing to ``stream`` and appending to ``log`` (an open file): the console
    of a run, kept in its folder (``zppo pipeline`` -> ``<output>/console.log``)."""

    def __init__(self, stream: Any, log: Any) -> None:
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.stream.write(text)
        try:
            self.log.write(text)
            self.log.flush()
        except (OSError, ValueError):  # disk full, or closed at exit: the console still works
            pass
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ... of the console
        return getattr(self.stream, name)


def keep_console(path: Any) -> None:
    """From now on ``sys.stdout`` and ``sys.stderr`` also append to ``path`` (with a header line)."""
    import datetime
    import sys

    log = open(path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115 - open for the process
    log.write(f"\n===== {datetime.datetime.now().isoformat(timespec='seconds')} {' '.join(sys.argv)}\n")
    sys.stdout, sys.stderr = Tee(sys.stdout, log), Tee(sys.stderr, log)


__all__ = ["QUIET_ENV", "VERBOSE_ENV", "ProgressLine", "Tee", "configure", "keep_console", "eta_seconds", "format_duration",
           "is_verbose", "progress_text"]
