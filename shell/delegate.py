"""Executing delegate plugins (spec §2, "Delegation")."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import IO

from returns.result import Failure, Result, Success

from core.delegate_output import Outcome, interpret
from core.errors import CniError, Code
from core.jsonvalue import JsonObject, encode
from core.names import is_valid_plugin_type
from shell.spawn import run_process

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
            if os.access(candidate, os.X_OK):
                return Success(candidate)
            not_executable.append(candidate)
    hint = f" ({', '.join(not_executable)} is not executable)" if not_executable else ""
    return Failure(
        CniError(
            Code.DELEGATE_NOT_FOUND,
            f"delegate plugin {plugin_type!r} not found in CNI_PATH {':'.join(path)}{hint}:"
            " install it there (Debian: containernetworking-plugins)",
        )
    )


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

    def find(self, plugin_type: str) -> Result[str, CniError]:
        return find_plugin(plugin_type, self._path)

    def call(
        self,
        config: JsonObject,
        command: str,
        overrides: Mapping[str, str] | None = None,
    ) -> Result[JsonObject | None, CniError]:
        """Execute ``config['type']`` for ``command`` with ``config`` on stdin."""
        plugin_type = str(config.get("type", ""))
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
        except OSError as exc:
            return Failure(
                CniError(
                    Code.DELEGATE_NOT_FOUND,
                    f"cannot execute delegate {executable}: {exc.strerror or exc}",
                )
            )
        if outcome.stderr:
            self._stderr.write(outcome.stderr.decode("utf-8", "replace"))
            self._stderr.flush()
        return interpret(plugin_type, command, outcome)
