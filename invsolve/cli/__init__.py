"""The ``invsolve`` command line: a thin layer over :mod:`invsolve.api`.

Exit codes: 0 success, 1 a user or data error (one ``Error: ...`` line on
stderr), 2 a usage error.  ``INVSOLVE_DEBUG=1`` shows full tracebacks.
"""

from __future__ import annotations

import typer

from . import estimate_noise, evaluate, listing, reconstruct, sample_posterior, simulate, train_prior
from . import train_sampler
from . import calibrate, report, sample_prior, show

__all__ = ["app", "main"]

app = typer.Typer(
    name="invsolve",
    help="Imaging inverse problems: simulate measurements, reconstruct, sample posteriors, train priors and samplers, estimate noise levels, evaluate, calibrate posteriors.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("simulate")(simulate.simulate)
app.command("reconstruct")(reconstruct.reconstruct)
app.command("sample-posterior")(sample_posterior.sample_posterior)
app.command("train-prior")(train_prior.train_prior)
app.command("estimate-noise")(estimate_noise.estimate_noise)
app.command("evaluate")(evaluate.evaluate)
app.command("list")(listing.list_cmd)
app.command("info")(listing.info)
app.command("train-sampler")(train_sampler.train_sampler)
app.command("show")(show.show)
app.command("report")(report.report)
app.command("calibrate")(calibrate.calibrate)
app.command("sample-prior")(sample_prior.sample_prior)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings on stderr as one ``Warning: ...`` line (the source line of the call is of no use there)."""
    return f"Warning: {message}\n"


def _usage_error(exc: BaseException) -> str | None:
    """One line for a command-line usage error (unknown option or command, a bad value), with where to look;
    None for anything else."""
    if type(exc).__name__ == "Abort":  # Ctrl-C (or SIGTERM) while the command line was read
        from ._signals import interrupted_message

        return interrupted_message({})
    fmt = getattr(exc, "format_message", None)
    if fmt is None or type(exc).__module__.split(".")[0] not in ("typer", "click"):
        return None
    message = " ".join(str(fmt()).split())
    if not message:
        return ""
    ctx = getattr(exc, "ctx", None)
    where = f"`{ctx.command_path} --help`" if ctx is not None else "`invsolve --help`"
    return f"{message} (see {where})"


def _leave(code: int) -> None:
    """End an interrupted command with ``code`` (130, 143) at once: its outputs are whole or absent already,
    and the interpreter's own shutdown would turn a pending interrupt into death by SIGINT (exit -2)."""
    import os
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def main() -> None:
    import os
    import sys
    import warnings

    from ._signals import exit_code, interrupted_message, interrupts

    if not os.environ.get("INVSOLVE_DEBUG"):
        warnings.formatwarning = _one_line_warning
    try:
        with interrupts():  # SIGTERM as Ctrl-C from the start, also while heavy modules import
            code = app(prog_name="invsolve", standalone_mode=False)
            import signal

            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # done: a stop now changes nothing; leave as finished
        if code in (130, 143):
            _leave(code)
        sys.exit(code if isinstance(code, int) else 0)
    except KeyboardInterrupt:  # e.g. Ctrl-C while heavy modules import
        print(f"Error: {interrupted_message({})}", file=sys.stderr)
        _leave(exit_code())
    except BrokenPipeError:  # help or a usage message printed into a pipe whose reader has quit
        from ._stdout import BROKEN_PIPE_EXIT, lose_stdout

        lose_stdout("broken")
        sys.exit(BROKEN_PIPE_EXIT)
    except Exception as exc:
        usage = _usage_error(exc)
        if usage is None:
            raise
        if usage:  # empty: the help was printed already (no arguments)
            print(f"Error: {usage}", file=sys.stderr)
        if type(exc).__name__ == "Abort":
            _leave(exit_code())
        sys.exit(getattr(exc, "exit_code", 2) or 2)
    finally:
        if "invsolve.distributed" in sys.modules:  # leave a torchrun process group cleanly
            from ..distributed import finish

            exc = sys.exc_info()[1]  # typer ends a successful command with SystemExit(0)
            finish(clean=exc is None or (isinstance(exc, SystemExit) and exc.code in (0, None)))
