"""A learned forward model (``surrogate``) loaded from a file.

Two file kinds are read:

* a PyTorch **state dict** of an MLP ``Sequential(Linear, act, ..., Linear)``
  whose layer widths and activation are given in the config (keys ``0.*``,
  ``2.*``, ...; a common prefix such as ``module.`` is stripped).  It is read
  with ``torch.load(weights_only=True, map_location="cpu")``, so loading never
  runs pickled code;
* a **TorchScript** archive (``torch.jit.save``), read with ``torch.jit.load``.

The default is the scatterometry surrogate of the shared data folder
(``$INVSOLVE_SHARED_DATA/scatterometry/forward_model.pt``, default
``../shared/data`` beside the repository): 3 parameters on [−1, 1]³ → 23
diffraction efficiencies, widths [3, 256, 256, 256, 23], ReLU.

Persistence: the spec keeps the model path; with ``store_weights`` (default)
the weights also travel as operator arrays (``state.<key>`` tensors, or the
TorchScript archive's bytes as ``torchscript``), so a measurement or sampler
file rebuilds the operator without the original model file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from ..config import Params
from ..errors import ConfigError, DataError, ShapeError
from .base import OPERATORS, Operator, OperatorEntry

__all__ = ["SurrogateParams", "SurrogateOperator", "shared_data_dir", "build_mlp"]

_ACT = {"relu": nn.ReLU, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "silu": nn.SiLU,
        "elu": nn.ELU, "softplus": nn.Softplus, "sigmoid": nn.Sigmoid}


def shared_data_dir() -> Path:
    """``$INVSOLVE_SHARED_DATA``, else ``../shared/data`` relative to the repository root."""
    env = os.environ.get("INVSOLVE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


class SurrogateParams(Params):
    model: str | None = Field(None, description="state dict or TorchScript file (default: the shared scatterometry model)")
    format: Literal["auto", "state_dict", "torchscript"] = Field("auto", description="file kind")
    widths: list[int] = Field(default_factory=lambda: [3, 256, 256, 256, 23], description="MLP layer widths")
    activation: Literal[tuple(_ACT)] = Field("relu", description="activation between the linear layers")
    store_weights: bool = Field(True, description="keep the weights in measurement/sampler files")
    prior_low: float | list[float] = Field(-1.0, description="prior box: lower corner")
    prior_high: float | list[float] = Field(1.0, description="prior box: upper corner")


def build_mlp(widths: list[int], activation: str) -> nn.Sequential:
    """Sequential(Linear(w0, w1), act, ..., Linear(w_{n-1}, w_n)); Linear layers at even indices."""
    if len(widths) < 2 or min(widths) < 1:
        raise ConfigError(f"surrogate widths {widths} need at least two positive entries (input, output)")
    mods: list[nn.Module] = []
    for i in range(len(widths) - 1):
        mods.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            mods.append(_ACT[activation]())
    return nn.Sequential(*mods)


def _input_dim(net: nn.Module) -> int | None:
    """Input width of a network whose first layer is Linear (an MLP; TorchScript too), else None."""
    first = next(iter(net.children()), None) if isinstance(net, nn.Sequential) else None
    if isinstance(first, nn.Linear):
        return int(first.in_features)
    w = dict(net.named_parameters()).get("0.weight")  # TorchScript Sequential: the first Linear's weight
    return int(w.shape[1]) if w is not None and w.dim() == 2 else None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]


def _strip_prefix(sd: dict) -> dict:
    keys = list(sd)
    if keys and all(not k[:1].isdigit() for k in keys):
        pre = os.path.commonprefix(keys)
        pre = pre[: pre.rfind(".") + 1] if "." in pre else ""
        if pre:
            return {k[len(pre):]: v for k, v in sd.items()}
    return sd


def _is_torchscript(p: Path) -> bool:
    """A TorchScript archive is a zip holding ``*/code/`` sources (state dicts do not)."""
    import zipfile

    if not zipfile.is_zipfile(p):
        return False
    with zipfile.ZipFile(p) as z:
        return any("/code/" in n for n in z.namelist())


class SurrogateOperator(Operator):
    """y = f_θ(x) for a learned network f_θ: (B, d) -> (B, m); nonlinear, frozen weights.

    References:
        Heidenreich, Gross, Bär, Bayesian approach to the statistical inverse
        problem of scatterometry: comparison of three surrogate models, IJUQ
        5(6) (2015); Hagemann et al., Stochastic normalizing flows for inverse
        problems: a Markov chains viewpoint, arXiv 2109.11375.
    """

    Params = SurrogateParams
    kind = "surrogate"
    file_params = {"model": ("torchscript", "state.")}
    domain_ndim = 1

    def __init__(self, params: SurrogateParams, image_shape, arrays=None):
        super().__init__(params, image_shape, arrays)
        arrays = arrays or {}
        self._blob: np.ndarray | None = None
        if "torchscript" in arrays:
            self.net = self._load_script(io.BytesIO(np.asarray(arrays["torchscript"], np.uint8).tobytes()), "stored")
            self._blob = np.asarray(arrays["torchscript"], np.uint8)
        elif any(k.startswith("state.") for k in arrays):
            sd = {k[6:]: torch.as_tensor(np.asarray(v)) for k, v in arrays.items() if k.startswith("state.")}
            self.net = self._from_state(sd, "the stored weights")
        else:
            self.net = self._load_file()
        for prm in self.net.parameters():
            prm.requires_grad_(False)
        self.net.eval()
        ps = list(self.net.parameters())
        self._dtype = ps[0].dtype if ps else torch.float32
        d = _input_dim(self.net)
        if d is not None and self.image_shape != (d,):
            got = self.image_shape[0] if len(self.image_shape) == 1 else self.image_shape
            raise ShapeError(f"the surrogate model takes {d} parameters per item, got {got} (it does not "
                             f"accept inputs of shape {self.image_shape}); give vectors ({d},) or (N, {d})")
        with torch.no_grad():
            try:
                out = self.net(torch.zeros((1, *self.image_shape), dtype=self._dtype))
            except Exception as exc:  # shape mismatch between the inputs and the network
                raise ShapeError(f"the surrogate model does not accept inputs of shape {self.image_shape} "
                                 f"({_first_line(exc)}); check the parameters per item") from None
        if out.dim() != 2:
            raise DataError(f"surrogate model returns shape {tuple(out.shape)} for one input; expected (1, m)")
        self._m = int(out.shape[1])

    # -- loading ----------------------------------------------------------------
    def _path(self) -> Path:
        if self.params.model is not None:
            return Path(self.params.model)
        return shared_data_dir() / "scatterometry" / "forward_model.pt"

    def _load_file(self) -> nn.Module:
        p = self._path()
        if not p.is_file():
            hint = "give -P model=FILE" if self.params.model else "set INVSOLVE_SHARED_DATA or give -P model=FILE"
            raise DataError(f"surrogate model file not found: {p} ({hint})")
        fmt = self.params.format
        if fmt == "auto" and _is_torchscript(p):
            fmt = "torchscript"
        if fmt in ("auto", "state_dict"):
            try:
                obj = torch.load(p, weights_only=True, map_location="cpu")
            except Exception as exc:
                if fmt == "state_dict":
                    raise DataError(f"{p} is not a readable state dict ({_first_line(exc)})") from None
                obj = None
            if isinstance(obj, torch.nn.Module):  # torch may dispatch TorchScript archives to jit.load itself
                return self._script_from_file(p)
            if obj is not None:
                if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
                    obj = obj["state_dict"]
                if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
                    raise DataError(f"{p} holds no state dict of tensors; give a state dict or a TorchScript file")
                return self._from_state(obj, str(p))
        return self._script_from_file(p)

    def _script_from_file(self, p: Path) -> nn.Module:
        blob = p.read_bytes()
        net = self._load_script(io.BytesIO(blob), str(p))
        self._blob = np.frombuffer(blob, dtype=np.uint8).copy()
        return net

    @staticmethod
    def _load_script(buf, where: str) -> nn.Module:
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.jit.load(buf, map_location="cpu")
        except Exception:  # torch's text runs over lines and into its own internals
            raise DataError(f"{where} is neither a state dict nor a TorchScript archive (damaged or another "
                            "format); give the model file written with torch.save(state_dict) or torch.jit.save"
                            ) from None

    def _from_state(self, sd: dict, where: str) -> nn.Module:
        net = build_mlp(self.params.widths, self.params.activation)
        sd = _strip_prefix(dict(sd))
        try:
            net.load_state_dict({k: v.to(torch.float32) if v.dtype == torch.float16 else v for k, v in sd.items()})
        except RuntimeError as exc:
            raise DataError(f"{where} does not match the surrogate architecture widths={self.params.widths} "
                            f"({_first_line(exc)}); set -P 'widths=[...]'") from None
        return net.to(next(iter(sd.values())).dtype)

    # -- operator ----------------------------------------------------------------
    @classmethod
    def image_shape_for(cls, params, range_shape):
        """(widths[0],): the network's input width."""
        return (int(params.widths[0]),)

    @property
    def range_shape(self):
        return (self._m,)

    def prior_spec(self) -> dict:
        """The uniform prior box of the parameters."""
        return {"name": "uniform", "dim": self.image_shape[0], "low": self.params.prior_low,
                "high": self.params.prior_high}

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float64 and self._dtype != torch.float64:  # exact gradients for float64 callers
            cache = self.__dict__.get("_net64")
            if cache is None or next(iter(cache.parameters())).device != x.device:
                import copy

                cache = copy.deepcopy(self.net).to(device=x.device, dtype=torch.float64)
                self.__dict__["_net64"] = cache
            return cache(x)
        return self.net(x.to(self._dtype)).to(x.dtype)


    def arrays(self) -> dict[str, np.ndarray]:
        if not self.params.store_weights:
            return {}
        if self._blob is not None:
            return {"torchscript": self._blob}
        return {f"state.{k}": v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}


OPERATORS.add(
    "surrogate",
    OperatorEntry(
        SurrogateOperator,
        {},
        noise={"name": "mixed", "a": 0.005, "b": 0.1},
        summary="vectors: a learned forward model from a state dict + MLP widths, or TorchScript (default: scatterometry 3 -> 23)",
    ),
)
