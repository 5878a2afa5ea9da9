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
    main()


if __name__ == "__main__":
    run()
