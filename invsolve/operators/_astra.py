"""A thin bridge between torch tensors and ASTRA 2-D projectors.

ASTRA is imported lazily, inside functions, so that ``import invsolve`` does
not load it.  CPU tensors are passed to ``astra.experimental.direct_FP2D`` and
``direct_BP2D`` through DLPack without copies; a batch is spread over a
persistent thread pool (ASTRA releases the GIL).  CUDA tensors use ASTRA's
2-D ``cuda`` projector on the device memory (ASTRA >= 2.5 links CUDA DLPack
tensors into its 2-D GPU algorithms), but only when
``torch.cuda.is_available() and astra.use_cuda()``; otherwise they are
projected on the host and copied back.

Volume coordinates follow ASTRA: for an (H, W) image, x = col + 0.5 - W/2 and
y = H/2 - row - 0.5 (y points up, row 0 is the top row).
"""

from __future__ import annotations

import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

__all__ = ["Projector2D", "parallel_geometry", "fan_geometry", "vector_geometry", "astra_cuda_usable"]

_cuda_usable: bool | None = None
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _astra() -> Any:
    import astra
    import astra.experimental  # noqa: F401  (not imported by ``import astra``)

    return astra


def astra_cuda_usable() -> bool:
    """Whether ASTRA's CUDA projectors may run: a CUDA device and a CUDA-enabled ASTRA.

    Both checks are needed: an ASTRA CUDA call without a usable GPU can kill the
    process (SIGFPE) instead of raising.
    """
    global _cuda_usable
    if _cuda_usable is None:
        ok = False
        if torch.cuda.is_available():
            try:
                ok = bool(_astra().use_cuda())
            except Exception:  # an ASTRA without CUDA support
                ok = False
        _cuda_usable = ok
    return _cuda_usable


def parallel_geometry(angles: np.ndarray, detectors: int, spacing: float) -> dict:
    """ASTRA ``parallel`` geometry; angles in radians, spacing in pixels."""
    return {
        "type": "parallel",
        "DetectorWidth": float(spacing),
        "DetectorCount": int(detectors),
        "ProjectionAngles": np.asarray(angles, dtype=np.float64),
    }


def fan_geometry(
    angles: np.ndarray, detectors: int, spacing: float, source_origin: float, origin_detector: float
) -> dict:
    """ASTRA ``fanflat`` geometry (flat detector); lengths in pixels, angles in radians."""
    return {
        "type": "fanflat",
        "DetectorWidth": float(spacing),
        "DetectorCount": int(detectors),
        "ProjectionAngles": np.asarray(angles, dtype=np.float64),
        "DistanceOriginSource": float(source_origin),
        "DistanceOriginDetector": float(origin_detector),
    }


def vector_geometry(kind: str, vectors: np.ndarray, detectors: int) -> dict:
    """ASTRA ``parallel_vec`` or ``fanflat_vec`` geometry from its rows, (angles, 6), lengths in pixels."""
    return {"type": kind, "DetectorCount": int(detectors), "Vectors": np.asarray(vectors, dtype=np.float64)}


def _executor(workers: int) -> ThreadPoolExecutor:
    """A persistent pool with at least ``workers`` threads (threads start lazily)."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:  # grow only when needed
            _pool_size = max(workers, os.cpu_count() or 1)
            old, _pool = _pool, ThreadPoolExecutor(_pool_size, "invsolve-astra")
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def _release(ids: dict) -> None:
    """Finalizer: delete the ASTRA projectors of a :class:`Projector2D`."""
    if not ids:
        return
    try:
        import astra

        astra.projector.delete(list(ids.values()))
    except Exception:  # interpreter shutdown: nothing left to free
        pass
    ids.clear()


class Projector2D:
    """Forward and back projection of image batches with ASTRA.

    The ASTRA projectors are created on first use (one for the CPU, one per
    CUDA device) and deleted when this object is garbage collected.

    Arguments:
        image_shape: (H, W) of the images.
        geometry: An ASTRA 2-D projection geometry dict (:func:`parallel_geometry`,
            :func:`fan_geometry`).
        projector: The ASTRA CPU projector type (``linear``, ``line``, ``strip``,
            ``line_fanflat``, ``strip_fanflat``); CUDA tensors use ``cuda``.
        scale: Factor applied to both projections (e.g. the pixel size).
    """

    def __init__(self, image_shape: tuple[int, int], geometry: dict, projector: str, scale: float = 1.0):
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.geometry = geometry
        self.projector = projector
        self.scale = float(scale)
        n_angles = len(geometry["Vectors"] if "Vectors" in geometry else geometry["ProjectionAngles"])
        self.range_shape = (n_angles, int(geometry["DetectorCount"]))
        self._init_state()

    def _init_state(self) -> None:
        self._ids: dict[Any, int] = {}
        self._lock = threading.Lock()
        weakref.finalize(self, _release, self._ids)

    # copies (deepcopy, pickle) rebuild their own ASTRA objects
    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_ids", "_lock")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_state()

    def _pid(self, key: Any) -> int:
        pid = self._ids.get(key)
        if pid is None:
            with self._lock:
                pid = self._ids.get(key)
                if pid is None:
                    astra = _astra()
                    vol = astra.create_vol_geom(*self.image_shape)
                    if key == "cpu":
                        pid = astra.create_projector(self.projector, self.geometry, vol)
                    else:
                        pid = astra.create_projector("cuda", self.geometry, vol, {"GPUIndex": key})
                    self._ids[key] = pid
        return pid

    # -- differentiable application -------------------------------------------
    def fp(self, x: torch.Tensor) -> torch.Tensor:
        """Forward projection (line integrals), (B, H, W) -> (B, angles, detectors)."""
        return _Project.apply(x, self, False)

    def bp(self, y: torch.Tensor) -> torch.Tensor:
        """Back projection, the exact transpose on the CPU, (B, angles, detectors) -> (B, H, W)."""
        return _Project.apply(y, self, True)

    # -- raw application ----------------------------------------------------------
    def apply(self, t: torch.Tensor, transpose: bool) -> torch.Tensor:
        """FP (or BP when ``transpose``) of a batch without autograd; keeps device and dtype."""
        out_shape = (t.shape[0], *(self.image_shape if transpose else self.range_shape))
        dev = t.device
        if dev.type == "cuda" and astra_cuda_usable():
            out = self._apply_cuda(t.detach().to(torch.float32).contiguous(), out_shape, transpose)
        else:
            src = t.detach().to("cpu", torch.float32).contiguous()
            out = torch.empty(out_shape, dtype=torch.float32)
            self._apply_cpu(src, out, transpose)
            out = out.to(dev)
        if self.scale != 1.0:
            out.mul_(self.scale)
        if t.dtype.is_floating_point and t.dtype != torch.float32:
            out = out.to(t.dtype)
        return out

    def _apply_cpu(self, src: torch.Tensor, out: torch.Tensor, transpose: bool) -> None:
        astra = _astra()
        pid = self._pid("cpu")
        if transpose:
            fn, a, b = astra.experimental.direct_BP2D, out, src
        else:
            fn, a, b = astra.experimental.direct_FP2D, src, out

        n = src.shape[0]
        workers = min(n, torch.get_num_threads())
        if workers <= 1:
            for i in range(n):
                fn(pid, a[i], b[i])
            return
        items, lock = iter(range(n)), threading.Lock()  # shared queue: early finishers take more

        def work() -> None:
            while True:
                with lock:
                    i = next(items, None)
                if i is None:
                    return
                fn(pid, a[i], b[i])

        futures = [_executor(workers - 1).submit(work) for _ in range(workers - 1)]
        work()  # the calling thread works too
        for f in futures:
            f.result()

    def _apply_cuda(self, src: torch.Tensor, out_shape: tuple, transpose: bool) -> torch.Tensor:
        # [not run on a GPU] ASTRA's 2-D CUDA algorithms copy linked device
        # memory device-to-device; they run on the legacy default stream, so
        # synchronise torch's stream before and the device after.
        astra = _astra()
        dev = src.device
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        pid = self._pid(index)
        out = torch.empty(out_shape, dtype=torch.float32, device=dev)
        torch.cuda.current_stream(dev).synchronize()
        with torch.cuda.device(dev):
            for i in range(src.shape[0]):
                if transpose:
                    astra.experimental.direct_BP2D(pid, out[i], src[i])
                else:
                    astra.experimental.direct_FP2D(pid, src[i], out[i])
        torch.cuda.synchronize(dev)
        return out


class _Project(torch.autograd.Function):
    """FP with BP as its backward, and BP with FP as its backward (any order)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor, proj: Projector2D, transpose: bool) -> torch.Tensor:
        ctx.proj, ctx.transpose = proj, transpose
        return proj.apply(t, transpose)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _Project.apply(grad, ctx.proj, not ctx.transpose), None, None
