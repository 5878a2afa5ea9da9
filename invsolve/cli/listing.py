"""``invsolve list`` and ``invsolve info``."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from ._common import emit_json, handle_errors, out_console
from ._options import JsonOpt

KINDS = ("operators", "noise", "methods", "priors", "samplers")


def _fields(model) -> list[dict[str, Any]]:
    from pydantic_core import to_jsonable_python

    out = []
    for name, f in model.model_fields.items():
        default = to_jsonable_python(f.get_default(call_default_factory=True))
        out.append({"name": name, "default": default, "help": f.description or ""})
    return out


def registry_listing() -> dict[str, list[dict[str, Any]]]:
    """Everything registered, with parameters and defaults (presets show their own values)."""
    from ..methods import METHODS
    from ..methods import load_all as load_methods
    from ..noise import NOISE
    from ..noise import load_all as load_noise
    from ..operators import OPERATORS, load_all

    load_all(), load_noise(), load_methods()
    ops = []
    from pydantic_core import to_jsonable_python

    for name, e in OPERATORS.items():
        params = _fields(e.cls.Params)
        for p in params:
            if p["name"] in e.defaults:
                p["default"] = to_jsonable_python(e.defaults[p["name"]])
        ops.append({"name": name, "kind": e.cls.kind, "summary": e.summary, "noise": e.noise, "params": params})
    noise = [{"name": n, "summary": doc(c), "params": _fields(c.Params)} for n, c in NOISE.items()]
    methods = [{"name": n, "summary": doc(c), "operators": _method_operators(c), "params": _fields(c.Params)}
               for n, c in METHODS.items()]
    from ..priors import PRIORS
    from ..priors import load_all as load_priors
    from ..samplers import SAMPLERS
    from ..samplers import load_all as load_samplers

    load_priors(), load_samplers()

    priors = [{"name": n, "summary": doc(c),
               "params": _fields(c.Config) + _fields(c.Training)} for n, c in PRIORS.items()]
    samplers = [{"name": n, "summary": doc(c), "params": _fields(c.Config)} for n, c in SAMPLERS.items()]
    from ..langevin import LangevinParams
    from ..mcmc import MCMCParams

    samplers.append({"name": "langevin", "summary": "unadjusted Langevin with a patch prior (--prior, --prior-file)",
                     "params": _fields(LangevinParams)})
    samplers.append({"name": "mcmc", "summary": "parallel MALA or random-walk chains on a parameter-vector "
                     "posterior (gixrf, surrogate, linear; -S prior=... where the operator has no box)",
                     "params": _fields(MCMCParams)})
    return {"operators": ops, "noise": noise, "methods": methods, "priors": priors, "samplers": samplers}


@handle_errors
def list_cmd(
    what: Annotated[Optional[str], typer.Argument(help="operators, noise, methods, priors or samplers (default: all)")] = None,
    json: JsonOpt = None,
) -> None:
    """List registered operators, noise models, methods, priors and samplers with their parameters and defaults."""
    from ..errors import ConfigError

    if what is not None and what not in KINDS:
        raise ConfigError(f"unknown list {what!r}; valid: {', '.join(KINDS)}")
    data = registry_listing()
    if what:
        data = {what: data[what]}
    if json:
        emit_json(data)
        return
    from rich.table import Table

    con = out_console()
    for kind, entries in data.items():
        t = Table(title=kind, show_lines=True)
        t.add_column("name", style="bold")
        t.add_column("about")
        t.add_column("parameters (default)")
        for e in entries:
            about = e["summary"]
            if "noise" in e:
                about += f"\ndefault noise: {e['noise']}"
            if "operators" in e:
                about += f"\noperators: {', '.join(e['operators'])}"
            params = "\n".join(f"{p['name']} = {p['default']!r}" for p in e["params"]) or "-"
            t.add_row(e["name"], about, params)
        con.print(t)


def runtime_info() -> dict[str, Any]:
    import platform

    import h5py
    import numpy
    import torch

    from .. import __version__

    info: dict[str, Any] = {
        "invsolve": __version__, "python": platform.python_version(), "platform": platform.platform(),
        "torch": torch.__version__, "numpy": numpy.__version__, "h5py": h5py.__version__,
        "torch_threads": torch.get_num_threads(), "cuda_available": torch.cuda.is_available(),
        "torch_cuda_build": torch.version.cuda,
        "default_device": "cuda" if torch.cuda.is_available() else "cpu",
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["cuda_bf16"] = bool(torch.cuda.is_bf16_supported())
    dist = torch.distributed
    info["distributed_backends"] = [b for b, ok in (("gloo", dist.is_available() and dist.is_gloo_available()),
                                                    ("nccl", dist.is_available() and dist.is_nccl_available()))
                                    if ok]
    info["torch_compile"] = hasattr(torch, "compile")
    try:
        import astra

        info["astra"] = astra.__version__
        info["astra_cuda_compiled"] = bool(astra.has_feature("cuda"))
        info["astra_cuda_usable"] = bool(astra.use_cuda())
    except Exception as exc:  # ASTRA missing or broken: report, don't fail
        info["astra"] = f"unavailable ({exc})"
    return info


@handle_errors
def info(json: JsonOpt = None) -> None:
    """Versions, the torch device, and whether ASTRA can use CUDA."""
    data = runtime_info()
    if json:
        emit_json(data)
        return
    from rich.table import Table

    t = Table(show_header=False)
    for k, v in data.items():
        t.add_row(k, str(v))
    out_console().print(t)


def doc(cls) -> str:
    """The first paragraph of a class docstring, on one line."""
    return " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())


def _method_operators(cls) -> list[str]:
    """Where a reconstruction method applies, in words: operator kinds, images, linear operators."""
    if cls.operators:
        return list(cls.operators)
    if cls.images_only:
        return ["images (linear operators)"] if cls.linear_only else ["images"]
    return ["linear operators (images and vectors)"] if cls.linear_only else ["any"]
