"""Data-parallel training under ``torchrun`` (DistributedDataParallel).

``torchrun --nproc-per-node N -m invsolve train-prior|train-sampler ...`` starts
N processes; each reads RANK / WORLD_SIZE / LOCAL_RANK from its environment,
joins a process group (``gloo`` on the CPU, ``nccl`` on GPUs) and wraps the
network in :class:`torch.nn.parallel.DistributedDataParallel`.

Every rank draws the same global batch from the same seeded generator and keeps
its own contiguous share of it (:meth:`Dist.share`); DDP averages the gradients,
and the share's loss is scaled by its size so that the average is the global
batch mean even when the batch does not divide evenly.  A run on N processes
therefore takes the same steps as one process with the same global batch, up
to the order of floating-point sums.  Rank 0 alone writes checkpoints and the
output; the others wait at a barrier.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .errors import ConfigError, DeviceError

__all__ = ["Dist", "setup", "finish", "LossModule"]


@dataclass
class Dist:
    """This process's place in the run (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @classmethod
    def from_env(cls) -> "Dist":
        """Rank and world size from torchrun's environment (before or without joining the group)."""
        return cls(int(os.environ.get("RANK", "0")), max(1, int(os.environ.get("WORLD_SIZE", "1"))),
                   int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> slice:
        """This rank's contiguous share of a global batch of ``n`` items."""
        if not self.active:
            return slice(0, n)
        if n < self.world:
            raise ConfigError(f"a batch of {n} cannot be split over {self.world} processes; "
                              f"give --batch-size of at least {self.world}")
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def scale(self, n: int) -> float:
        """Factor on a share's mean loss so that DDP's gradient average is the global mean."""
        sl = self.share(n)
        return (sl.stop - sl.start) * self.world / n

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def mean(self, value: float) -> float:
        """The mean of a scalar over the ranks (for logged losses)."""
        if not self.active:
            return float(value)
        dev = "cuda" if self.backend == "nccl" else "cpu"
        t = torch.tensor([float(value)], dtype=torch.float64, device=dev)
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` in DDP when distributed (itself otherwise)."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        dev = next(module.parameters()).device
        ids = [dev.index] if dev.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)


class LossModule(torch.nn.Module):
    """Wraps a loss function and the parameters it trains, so DDP can hook them.

    ``forward(*args)`` returns ``fn(*args)``; the gradients of ``params`` are
    averaged over the ranks during ``backward``.
    """

    def __init__(self, params: torch.nn.Module, fn):
        super().__init__()
        self.params = params
        self.fn = fn

    def forward(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def setup(device: str) -> tuple[Dist, str]:
    """Join the torchrun process group when one is running; returns (dist, device for this rank).

    Without torchrun (no WORLD_SIZE or WORLD_SIZE=1) nothing happens.  On CUDA each
    rank uses GPU LOCAL_RANK; on the CPU the backend is gloo.
    """
    env = Dist.from_env()
    if not env.active:
        return Dist(), device
    rank, world, local = env.rank, env.world, env.local_rank
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise DeviceError("--device cuda under torchrun but CUDA is not available; use --device cpu")
        if local >= torch.cuda.device_count():
            raise DeviceError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPU(s); "
                              "give torchrun --nproc-per-node at most the number of GPUs")
        torch.cuda.set_device(local)
        device, backend = f"cuda:{local}", "nccl"
    else:
        device, backend = "cpu", "gloo"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend)
    return Dist(rank, world, local, backend), device


def finish(clean: bool = True) -> None:
    """Leave the process group (when one was joined).

    After a clean run every rank first waits at a barrier: a rank with nothing left to do (rank 0 alone writes
    the output) must not tear down its gloo group while another rank still uses it; without the barrier that
    teardown aborted the process now and then.  After a failure there is no barrier (the other ranks may be
    inside a collective that will never complete; torchrun stops them).

    After that barrier a clean rank leaves with ``os._exit(0)`` (output flushed, files already closed): gloo's
    teardown raced with the other rank's exit and still aborted a process now and then ("terminate called
    without an active exception"), so it is skipped.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        if clean:
            import os
            import sys

            torch.distributed.barrier()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        torch.distributed.destroy_process_group()
