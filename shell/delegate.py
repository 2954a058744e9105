"""Executing delegate plugins (spec §2, "Delegation")."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from typing import IO

from returns.result import Failure, Result, Success

from core.delegate_output import Outcome, interpret
from core.errors import CniError, Code
from core.jsonvalue import JsonObject, encode
from core.names import is_valid_plugin_type
from core.versions import IMPLICIT_VERSION
from shell.spawn import DelegateIOError, run_process

# Where the kernel lists extra executable formats (qemu-user, wine, ...).
BINFMT_MISC = "/proc/sys/fs/binfmt_misc"

# (executable, environment, stdin) -> how it ended. Injected so tests can drive
# the shell in-process without real binaries.
Runner = Callable[[str, Mapping[str, str], bytes], Outcome]


def find_plugin(plugin_type: str, path: tuple[str, ...]) -> Result[str, CniError]:
    """The first executable named ``plugin_type`` in CNI_PATH."""
    if not is_valid_plugin_type(plugin_type):
        return Failure(
            CniError(
                Code.INVALID_NETWORK_CONFIG,
                f"plugin type {plugin_type!r} must be a name without a path separator",
            )
        )
    not_executable = []
    for directory in path:
        candidate = os.path.join(directory, plugin_type)
        if os.path.isfile(candidate):
            problem = _exec_problem(candidate)
            if problem is None:
                return Success(candidate)
            not_executable.append(f"{candidate} {problem}")
    hint = f" ({'; '.join(not_executable)})" if not_executable else ""
    return Failure(
        CniError(
            Code.DELEGATE_NOT_FOUND,
            f"delegate plugin {plugin_type!r} not found in CNI_PATH {':'.join(path)}{hint}:"
            " install it there (Debian: containernetworking-plugins)",
        )
    )


def _exec_problem(candidate: str) -> str | None:
    """Why the kernel would not execute ``candidate``, or None when it would.

    Checked before anything is stored, so that ADD fails cleanly. It matters
    beyond the error message: setpriv execs with execvp, which runs a file
    the kernel refuses (ENOEXEC) with /bin/sh, so a data file with an
    execute bit would be interpreted as a shell script.
    """
    if not os.access(candidate, os.X_OK):
        return "is not executable"
    try:
        with open(candidate, "rb") as file:
            head = file.read(256)
    except OSError:
        return None  # unreadable but executable (mode 0111): let exec decide
    if head.startswith(b"\x7fELF"):
        return None
    if head.startswith(b"#!"):
        words = head[2:].split(b"\n", 1)[0].split()
        interpreter = os.fsdecode(words[0]) if words else ""
        if interpreter and os.path.isfile(interpreter) and os.access(interpreter, os.X_OK):
            return None
        return f"names the interpreter {interpreter!r}, which is not an executable file"
    if _binfmt_misc_formats():
        return None  # a format the kernel was taught may be this one
    return "is neither an ELF program nor a #! script"


def _binfmt_misc_formats() -> bool:
    try:
        return any(name not in ("register", "status") for name in os.listdir(BINFMT_MISC))
    except OSError:
        return False


class Delegates:
    """Executes delegates with the runtime's environment, passing their stderr on."""

    def __init__(
        self,
        path: tuple[str, ...],
        env: Mapping[str, str],
        stderr: IO[str],
        runner: Runner = run_process,
    ) -> None:
        self._path = path
        self._env = env
        self._stderr = stderr
        self._runner = runner
        self._found: dict[str, Result[str, CniError]] = {}
        # Whether the last call got as far as starting the delegate: an ADD that
        # never started needs no rollback (and its DEL could not start either).
        self.last_started = False

    def find(self, plugin_type: str) -> Result[str, CniError]:
        """The delegate's executable, looked up once per invocation: ADD finds it
        before storing and again to execute it; STATUS asks VERSION, then STATUS."""
        if plugin_type not in self._found:
            self._found[plugin_type] = find_plugin(plugin_type, self._path)
        return self._found[plugin_type]

    def call(
        self,
        config: JsonObject,
        command: str,
        overrides: Mapping[str, str] | None = None,
    ) -> Result[JsonObject | None, CniError]:
        """Execute ``config['type']`` for ``command`` with ``config`` on stdin."""
        plugin_type = str(config.get("type", ""))
        self.last_started = False
        return self.find(plugin_type).bind(
            lambda executable: self._execute(executable, plugin_type, config, command, overrides)
        )

    def _execute(
        self,
        executable: str,
        plugin_type: str,
        config: JsonObject,
        command: str,
        overrides: Mapping[str, str] | None,
    ) -> Result[JsonObject | None, CniError]:
        env = {**self._env, **(overrides or {}), "CNI_COMMAND": command}
        try:
            outcome = self._runner(executable, env, encode(config))
        except DelegateIOError as exc:
            self.last_started = True
            return Failure(
                CniError(
                    Code.IO_FAILURE,
                    f"delegate {plugin_type!r} {command}: talking to it failed:"
                    f" {exc.strerror or exc}; it was stopped",
                )
            )
        except OSError as exc:
            return Failure(
                CniError(
                    Code.DELEGATE_NOT_FOUND,
                    f"cannot execute delegate {executable}: {exc.strerror or exc}",
                )
            )
        self.last_started = True
        # A broken stderr loses the delegate's log, never the answer.
        with contextlib.suppress(OSError, ValueError):
            if outcome.stderr_dropped:
                self._stderr.write(
                    f"flannel: delegate {plugin_type!r} {command} wrote more on stderr than"
                    f" is kept; its first {outcome.stderr_dropped} bytes are dropped\n"
                )
            if outcome.stderr:
                self._stderr.write(outcome.stderr.decode("utf-8", "replace"))
            self._stderr.flush()
        # The runtime reads our ADD result in its configuration's version.
        expected = config.get("cniVersion", IMPLICIT_VERSION) if command == "ADD" else None
        return interpret(
            plugin_type, command, outcome, expected if isinstance(expected, str) else None
        )
