"""Fast re-runs for `katas watch`: pytest in a child forked from a process that has already
imported torch, pytest and the other heavy libraries, so a re-run does not pay for them again.

The watching process never imports a kata module or a test, so each child imports the learner's
files afresh. Only on Linux (fork is unsafe with some macOS frameworks and absent on Windows);
elsewhere the watch mode starts a fresh pytest process each time, as the other commands do.
"""

import importlib
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import TextIO

from katakit import impl

LIBRARIES = ("torch", "numpy", "einops", "jaxtyping", "typeguard", "pytest", "_pytest.python")


def available() -> bool:
    return sys.platform == "linux" and hasattr(os, "fork")


def preload(heavy: bool = False) -> None:
    """Import what every kata test needs (and transformers, when `heavy`), once, in this process."""
    for name in (*LIBRARIES, *(("transformers",) if heavy else ())):
        try:
            importlib.import_module(name)
        except Exception:
            continue  # a missing library is the child's error to report


class Child:
    """`pytest <arguments>` in a forked child, with its output in `log`; like a subprocess.Popen."""

    def __init__(self, root: Path, arguments: list[str], env: dict[str, str], log: TextIO) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.returncode: int | None = None
        self.pid = os.fork()
        if self.pid == 0:
            self._run(root, arguments, env, log)  # never returns

    @staticmethod
    def _run(root: Path, arguments: list[str], env: dict[str, str], log: TextIO) -> None:
        code = 3
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            os.chdir(root)
            os.environ.clear()
            os.environ.update(env)
            impl.ROOT = root  # what KATAS_ROOT says, for a katakit imported before it was set
            sys.path.insert(0, str(root))
            import pytest

            code = int(pytest.main(arguments))
        except BaseException:  # whatever happens, the child must not return to the watch loop
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)
