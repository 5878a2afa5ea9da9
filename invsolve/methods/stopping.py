"""Stopping when done: the relative change of the window-mean iterate.

Iterative methods (MAP with a patch prior, TV) run up to their iteration count,
which becomes a cap: every ``window`` iterations the mean of the window's
iterates is compared with the previous window's mean,

    change_j = ||m_j − m_{j−1}|| / ||m_j||   (per item, the largest over the batch),

and the run stops at the first window whose change is below ``tol``.  Window
means, not single iterates, because MAP draws fresh random patches every step:
at a constant Adam step its iterate jitters around the minimiser, and the
jitter's share of a single step's change never falls below a floor, while the
mean over a window settles once the drift has ended.  The same rule serves a
deterministic loop (TV), whose window means converge with the iterate.

This is a small rule of invsolve's own; no library offers it for an arbitrary
torch loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["WindowStop", "relative_change", "STOP_CONVERGED", "STOP_CAP"]

STOP_CONVERGED = "converged"
STOP_CAP = "cap"


def relative_change(new: torch.Tensor, old: torch.Tensor) -> float:
    """max over items of ||new − old|| / ||new||; new, old (B, ...)."""
    d = (new - old).flatten(1).norm(dim=1)
    n = new.flatten(1).norm(dim=1).clamp_min(torch.finfo(new.dtype).tiny)
    return float((d / n).max())


@dataclass
class WindowStop:
    """The stopping rule's state over one run.

    Attributes:
        tol: Stop when the window means' relative change falls below it; 0 never stops early.
        window: Iterations per window (at least 2 windows run).
        cap: The iteration count (the run stops there at the latest).
    """

    tol: float
    window: int
    cap: int
    _sum: torch.Tensor | None = field(default=None, repr=False)
    _count: int = 0
    previous: torch.Tensor | None = field(default=None, repr=False)
    last_mean: torch.Tensor | None = field(default=None, repr=False)
    changes: list[float] = field(default_factory=list)
    iterations: int = 0
    reason: str = STOP_CAP

    def update(self, x: torch.Tensor) -> bool:
        """Record the iterate after one more iteration; True when the run should stop now."""
        self.iterations += 1
        if self.tol <= 0:
            return False
        x = x.detach()
        self._sum = x.clone() if self._sum is None else self._sum.add_(x)
        self._count += 1
        if self._count < self.window:
            return False
        mean, self._sum, self._count = self._sum / self.window, None, 0
        self.last_mean = mean
        if self.previous is not None:
            self.changes.append(relative_change(mean, self.previous))
            if self.changes[-1] < self.tol:
                self.reason = STOP_CONVERGED
                return True
        self.previous = mean
        return False

    def record(self, items: int = 1) -> dict:
        """What the output stores of this run, a list per item of the batch (the items stop together): the
        iterations run, why the run stopped (``converged`` or ``cap``), the last window change (NaN before
        the second window, or with ``tol`` 0)."""
        change = self.changes[-1] if self.changes else float("nan")
        return {"iterations_run": [self.iterations] * items, "stopped": [self.reason] * items,
                "last_change": [change] * items}
