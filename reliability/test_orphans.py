"""A delegate does not outlive the plugin: a runtime that kills the plugin on a
timeout leaves no delegate working on alone.

The plugin starts its delegate through ``setpriv --pdeathsig KILL``: when
the plugin dies, the kernel kills the delegate. Proved with a delegate that
hangs (it records its pid and sleeps for minutes): the plugin is SIGKILLed
as a runtime's timeout does, and the delegate must be gone within two
seconds; the record stays, so that the runtime's DEL can release what the
interrupted ADD or DEL held.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability.faults import Rig, RigError, requirements, rig_in

HANG_DELEGATE = """\
#!/bin/sh
# A stand-in delegate that hangs on the commands listed in hang-on beside it.
dir=$(dirname "$0")
cat >/dev/null
if grep -qx "$CNI_COMMAND" "$dir/hang-on" 2>/dev/null; then
    pidfile="$dir/hang-$CNI_COMMAND"
    echo $$ >"$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile.pid"
    exec sleep 300
fi
case "$CNI_COMMAND" in
ADD) printf '{"cniVersion":"0.4.0","interfaces":[],"ips":[],"dns":{}}' ;;
VERSION) printf '{"cniVersion":"0.4.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}' ;;
esac
"""


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    try:
        requirements()
    except RigError as exc:
        pytest.fail(str(exc))
    with rig_in(tmp_path, "or") as made:
        hang = made.node.bin_dir / "hang"
        hang.write_text(HANG_DELEGATE)
        hang.chmod(0o755)
        try:
            yield made
        finally:
            # Whatever the outcome, no stand-in may sleep on after the test.
            for pidfile in made.node.bin_dir.glob("hang-*.pid"):
                pid = int(pidfile.read_text())
                if _alive(pid) and _comm(pid) == "sleep":
                    os.kill(pid, signal.SIGKILL)


def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _alive(pid: int) -> bool:
    state = _status(pid).get("State", "X")
    return not state.startswith(("Z", "X"))


def _comm(pid: int) -> str:
    return _status(pid).get("Name", "")


def _wait_for(path: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"the delegate never started ({path} missing)"
        time.sleep(0.01)
    return int(path.read_text())


def _gone_within(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("command", ["ADD", "DEL"])
def test_delegate_dies_when_a_runtime_kills_the_plugin_on_timeout(
    rig: Rig, command: str, sig: signal.Signals
) -> None:
    config = rig.config(delegate={"type": "hang"})
    with rig.attachment() as att:
        if command == "DEL":
            added = rig.invoke("ADD", att, config)
            assert added.status == 0, added.stdout + added.stderr
        (rig.node.bin_dir / "hang-on").write_text(command + "\n")
        plugin = rig.start(command, att, config)
        delegate = _wait_for(rig.node.bin_dir / f"hang-{command}.pid", timeout=10)
        assert _alive(delegate)
        assert _comm(delegate) == "sleep"
        assert _status(delegate).get("PPid") == str(plugin.pid), "the plugin's own child"

        # The runtime's timeout expires, and it kills the plugin (Go's
        # exec.CommandContext sends SIGKILL; others SIGTERM first).
        with pytest.raises(subprocess.TimeoutExpired):
            plugin.wait(timeout=0.5)
        plugin.send_signal(sig)
        plugin.communicate()

        assert plugin.returncode == -sig
        assert _gone_within(delegate, 2.0), f"delegate {delegate} outlived the plugin"
        assert rig.wait_quiet(timeout=2.0) == [], "nothing runs on in the node"
        # Interrupted, the plugin kept its record: the runtime's DEL releases.
        assert rig.records() == [att.record]
        (rig.node.bin_dir / "hang-on").write_text("")
        deleted = rig.invoke("DEL", att, config)
        assert deleted.status == 0, deleted.stdout
        assert rig.records() == []
