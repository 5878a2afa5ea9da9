"""``python -m invsolve`` and the ``invsolve`` command.  SIGTERM and Ctrl-C that arrive while the command-line
modules import end the process at once with one line (nothing was started); from then on
:mod:`invsolve.cli._signals` turns both into an interrupt that removes temporary files and says what it left."""

import signal


def _stop(signum, frame):
    import os
    import sys

    sys.stderr.write(f"Error: interrupted ({signal.Signals(signum).name}); no output was written\n")
    sys.stderr.flush()
    os._exit(128 + int(signum))


def run() -> None:
    """The command's entry point."""
    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    from .cli import main

    for s, h in old.items():
        signal.signal(s, h)
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    _finish(code)


def _finish(code) -> None:
    """Leave a command that has ended with ``code`` (its files written and closed): the exit handlers run,
    the streams are flushed, and the process ends without the interpreter's teardown.  That teardown frees the
    native libraries' state in an order they do not all survive: a run whose results were complete has been
    seen to die there ("terminate called without an active exception", SIGABRT) under load."""
    import atexit
    import os
    import sys

    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("text"): Python prints it and exits 1
        sys.stderr.write(f"{code}\n")
        code = 1
    atexit._run_exitfuncs()  # logging's flush, weakref finalizers (temporary folders), registered handlers
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            code = code or 120  # what Python's own exit gives when the final flush fails
    os._exit(code)


if __name__ == "__main__":
    run()
