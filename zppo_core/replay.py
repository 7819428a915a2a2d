"""Prompt replay buffer (paper §3.3, App. C, Tab. 8).

Stores questions only (an id plus an optional payload such as ``{"question":..., "image":...}``),
never responses. Membership is decided from the **plain** rollouts of each step:

* ``update(qid, acc)`` with ``acc < threshold``: admit (``"admitted"``); if ``qid`` is already
  present it is a *revisit* (``"kept"``): FIFO position, payload and entry accuracy are unchanged
  (paper: NOT FOUND; documented choice, re-admission does not refresh the FIFO position).
* ``acc >= threshold``: a present ``qid`` graduates (is removed, ``"graduated"``); an absent one
  is ignored (``"none"``).
* Eviction is **not** done inside ``update``: after all updates of a step call :meth:`evict`
  (or use :meth:`refresh`, which does both). This is the paper's order ("refresh, then FIFO-evict
  until |B| <= B_max"), so a step that admits and graduates in the same refresh never evicts an
  entry that the graduations made room for.
* ``sample(k)``: ``min(k, len)`` distinct entries drawn uniformly without replacement with the
  buffer's own seeded ``random.Random``; sampled entries stay in the buffer (paper: NOT FOUND;
  they leave only by graduation or eviction).

Counters track admissions/graduations/evictions/revisits, and per accuracy bin
(``f"{acc:.3f}"``, e.g. ``"0.000"``, ``"0.125"`` for G_S = 8) the admissions by entry accuracy and
graduations / evictions by the entry accuracy of the leaving entry (paper Fig. 4 / Fig. 23).

``state_dict()`` is JSON-serialisable (provided payloads are) and restores everything exactly,
RNG state included. Question ids must be ``str`` so they survive a JSON round trip.
"""

from __future__ import annotations

import random
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any

from zppo_core.config import ZPPOConfig

_DEFAULTS = ZPPOConfig()  # paper values: |B|max = 10,000, tau = 0.5
STATE_VERSION = 1
_COUNTERS = ("admissions", "graduations", "evictions", "revisits")
_BIN_COUNTERS = ("admitted_by_bin", "graduated_by_bin", "evicted_by_bin")


def accuracy_bin(acc: float) -> str:
    """Bin key of a mean accuracy: ``f"{acc:.3f}"`` (``0.125 -> "0.125"``)."""
    return f"{acc:.3f}"


def entry_bins(group_size: int, threshold: float) -> list[str]:
    """Every bin an entry can have: ``k / group_size < threshold`` (``G_S = 8``, ``tau = 0.5``:
    ``["0.000", "0.125", "0.250", "0.375"]``), the x-axis of the paper's Fig. 4 / Fig. 23."""
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    return [accuracy_bin(k / group_size) for k in range(group_size) if k / group_size < threshold]


@dataclass
class _Entry:
    payload: Any
    entry_accuracy: float
    revisits: int = 0


class PromptReplayBuffer:
    """FIFO-bounded buffer of hard questions with threshold admission / graduation."""

    def __init__(
        self, capacity: int = _DEFAULTS.buffer_capacity, threshold: float = _DEFAULTS.tau, seed: int = 0
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.threshold = float(threshold)
        self.seed = seed
        self._rng = random.Random(seed)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._counts: Counter[str] = Counter()
        self._bins: dict[str, Counter[str]] = {k: Counter() for k in _BIN_COUNTERS}

    # -- membership -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, question_id: object) -> bool:
        return question_id in self._entries

    def question_ids(self) -> list[str]:
        """Ids in FIFO order (oldest first)."""
        return list(self._entries)

    def payload(self, question_id: str) -> Any:
        return self._entries[question_id].payload

    def entry_accuracy(self, question_id: str) -> float:
        return self._entries[question_id].entry_accuracy

    def update(self, question_id: str, mean_accuracy: float, payload: Any = None) -> str:
        """Apply one plain-rollout outcome; returns ``"admitted" | "graduated" | "kept" | "none"``."""
        if not isinstance(question_id, str):
            raise TypeError(f"question_id must be str, got {type(question_id).__name__} ({question_id!r})")
        acc = float(mean_accuracy)
        if not 0.0 <= acc <= 1.0:
            raise ValueError(f"mean_accuracy of {question_id!r} must be in [0, 1], got {mean_accuracy}")
        entry = self._entries.get(question_id)
        if acc < self.threshold:
            if entry is not None:
                entry.revisits += 1
                self._counts["revisits"] += 1
                return "kept"
            self._entries[question_id] = _Entry(payload=payload, entry_accuracy=acc)
            self._counts["admissions"] += 1
            self._bins["admitted_by_bin"][accuracy_bin(acc)] += 1
            return "admitted"
        if entry is None:
            return "none"
        del self._entries[question_id]
        self._counts["graduations"] += 1
        self._bins["graduated_by_bin"][accuracy_bin(entry.entry_accuracy)] += 1
        return "graduated"

    def evict(self) -> list[str]:
        """FIFO-evict oldest entries until ``len <= capacity``; returns the evicted ids."""
        evicted: list[str] = []
        while len(self._entries) > self.capacity:
            qid, entry = self._entries.popitem(last=False)
            self._counts["evictions"] += 1
            self._bins["evicted_by_bin"][accuracy_bin(entry.entry_accuracy)] += 1
            evicted.append(qid)
        return evicted

    def refresh(self, outcomes: list[tuple[str, float, Any]]) -> dict[str, Any]:
        """One step's refresh: ``update`` every ``(qid, acc, payload)`` in order, then ``evict``.

        Returns ``{"admitted": n, "graduated": n, "kept": n, "none": n, "evicted": [ids],
        "by_bin": {"admitted" | "graduated" | "evicted": {bin: n}}}`` (this refresh's events by
        entry-accuracy bin; bins without events are absent).
        """
        before = {k: Counter(v) for k, v in self._bins.items()}
        tally = Counter(self.update(qid, acc, payload) for qid, acc, payload in outcomes)
        out: dict[str, Any] = {k: tally.get(k, 0) for k in ("admitted", "graduated", "kept", "none")}
        out["evicted"] = self.evict()
        out["by_bin"] = {
            k.removesuffix("_by_bin"): dict(sorted((self._bins[k] - before[k]).items())) for k in _BIN_COUNTERS
        }
        return out

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, k: int) -> list[tuple[str, Any]]:
        """``min(k, len)`` distinct ``(question_id, payload)`` pairs, uniform without replacement."""
        if k < 0:
            raise ValueError(f"sample size must be >= 0, got {k}")
        ids = self._rng.sample(list(self._entries), min(k, len(self._entries)))
        return [(qid, self._entries[qid].payload) for qid in ids]

    # -- logging / persistence --------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Flat-ish dict for logging: size, fill, counters and per-bin counters."""
        accs = [e.entry_accuracy for e in self._entries.values()]
        out: dict[str, Any] = {
            "size": len(self._entries),
            "capacity": self.capacity,
            "fill_fraction": len(self._entries) / self.capacity,
            "mean_entry_accuracy": sum(accs) / len(accs) if accs else 0.0,
        }
        out.update({k: self._counts.get(k, 0) for k in _COUNTERS})
        out.update({k: dict(sorted(self._bins[k].items())) for k in _BIN_COUNTERS})
        return out

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss_next = self._rng.getstate()
        return {
            "version": STATE_VERSION,
            "capacity": self.capacity,
            "threshold": self.threshold,
            "seed": self.seed,
            "entries": [
                [qid, {"payload": e.payload, "entry_accuracy": e.entry_accuracy, "revisits": e.revisits}]
                for qid, e in self._entries.items()
            ],
            "counters": {k: self._counts.get(k, 0) for k in _COUNTERS},
            "bins": {k: dict(self._bins[k]) for k in _BIN_COUNTERS},
            "rng_state": [version, list(internal), gauss_next],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore exactly what :meth:`state_dict` produced (capacity and threshold included)."""
        missing = {"version", "capacity", "threshold", "seed", "entries", "counters", "bins", "rng_state"} - set(state)
        if missing:
            raise KeyError(f"replay buffer state is missing key(s): {sorted(missing)}")
        if state["version"] != STATE_VERSION:
            raise ValueError(f"replay buffer state version {state['version']} != {STATE_VERSION}")
        self.capacity = int(state["capacity"])
        self.threshold = float(state["threshold"])
        self.seed = state["seed"]
        entries: OrderedDict[str, _Entry] = OrderedDict()
        for i, item in enumerate(state["entries"]):
            try:
                qid, e = item
                entries[str(qid)] = _Entry(e["payload"], float(e["entry_accuracy"]), int(e["revisits"]))
            except (KeyError, TypeError, ValueError) as err:
                raise ValueError(f"replay buffer state: bad entries[{i}]: {err}") from None
        self._entries = entries
        self._counts = Counter({k: int(state["counters"].get(k, 0)) for k in _COUNTERS})
        self._bins = {k: Counter(state["bins"].get(k, {})) for k in _BIN_COUNTERS}
        version, internal, gauss_next = state["rng_state"]
        self._rng.setstate((int(version), tuple(int(x) for x in internal), gauss_next))


__all__ = ["PromptReplayBuffer", "accuracy_bin", "entry_bins"]
