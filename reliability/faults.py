"""Crash and storage faults without test hooks in the product.

The plugin runs as a runtime runs it: the installed executable, its
configuration on stdin, inside a network namespace that stands in for the
node, with Debian's real ``bridge`` and ``host-local`` as delegates. Faults
come from outside the product only:

- ``strace -e inject=SYSCALL:error=ERRNO:when=N`` fails the N-th call of a
  system call, either in the plugin's own process (scope ``plugin``: strace
  traces the plugin alone) or in every process of the invocation (scope
  ``tree``: ``-f``, the delegates too; strace counts calls per process);
  ``execve`` is failed per program (``strace -f -P <program>``);
- SIGKILL of the plugin after a random delay, as a runtime that gives up on
  a timeout kills it.

After each fault the runtime's retry runs (DEL; or ADD then DEL), and
:meth:`Rig.leaks` proves nothing is left: no record, no temporary file after
a GC, no host-local reservation, no veth in the node, no interface in the pod.

Operations: ``ADD``; ``DEL`` (after a clean ADD); ``ADD-rollback`` (an ADD
whose delegate fails because the pod's interface name is taken, so that the
plugin runs the delegate's DEL and removes its record: the path where
unlink happens along an ADD); ``DEL-unreadable`` (a DEL whose record was
overwritten with garbage: the plugin says so on stderr, replays a fresh
rendering and removes the record).

Shared by ``campaign_faults.py`` (the long campaign) and the bounded tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_interface, ip_network
from pathlib import Path
from typing import Any, Final

from conformance.conftest import REFERENCE_PLUGINS_DIR, Node, flannel_executable
from conformance.kernel import Namespace, namespaces

JsonObject = dict[str, Any]
Popen = subprocess.Popen[bytes]

NETWORK: Final = "cbr0"
CNI_VERSION: Final = "0.4.0"
SUBNET: Final = ip_network("10.244.7.0/24")
TEMP_PREFIX: Final = ".tmp-"  # core.records.TEMP_PREFIX, restated: a test must not trust it
STRACE: Final = "strace"
SETPRIV: Final = "/usr/bin/setpriv"
DELEGATES: Final = ("bridge", "host-local")
INVOCATION_TIMEOUT: Final = 60.0

# The system calls of each fault class. strace counts ``when=N`` per system
# call, so N hits the N-th call of each member; the plugin uses one member
# of each (write, fsync, renameat, openat, unlinkat, execve).
SYSCALL_CLASSES: Final[dict[str, tuple[str, ...]]] = {
    "write": ("write", "writev", "pwrite64"),
    "fsync": ("fsync", "fdatasync"),
    "rename": ("rename", "renameat", "renameat2"),
    "openat": ("open", "openat"),
    "unlink": ("unlink", "unlinkat", "rmdir"),
    "execve": ("execve", "execveat"),
}
ERRNOS: Final = ("EIO", "ENOSPC")
OPERATIONS: Final = ("ADD", "DEL", "ADD-rollback", "DEL-unreadable")
SCOPES: Final = ("plugin", "tree")
RETRY_STYLES: Final = ("del", "add-del")
START_UP: Final = "interpreter and modules"
# The plugin's own internal error (Debian's delegates use 999 for all of theirs).
INTERNAL_ERROR: Final = 999
INTERNAL_MSG: Final = "internal error in the flannel plugin"
# What the plugin says on stderr when a failed ADD could not be rolled back.
ROLLBACK_FAILED: Final = "so did the delegate's DEL"


class RigError(Exception):
    """The rig cannot run here (not root, a tool or a plugin missing)."""


def requirements() -> None:
    """Raise :class:`RigError` naming what is missing; never skip quietly."""
    if os.geteuid() != 0:
        raise RigError("fault injection must run as root (network namespaces, mounts)")
    missing = [t for t in (STRACE, "ip", "mount", "umount") if shutil.which(t) is None]
    if missing:
        raise RigError(f"tools missing: {missing} (apt-get install strace iproute2 mount)")
    if not os.access(SETPRIV, os.X_OK):
        raise RigError(f"{SETPRIV} missing (util-linux): delegates would outlive the plugin")
    plugins = [p for p in DELEGATES if not (REFERENCE_PLUGINS_DIR / p).is_file()]
    if plugins:
        raise RigError(f"reference plugins missing from {REFERENCE_PLUGINS_DIR}: {plugins}")
    flannel_executable()


# -- one invocation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """How one plugin invocation ended."""

    status: int  # negative: killed by that signal
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    @property
    def answer(self) -> JsonObject | None:
        try:
            loaded = json.loads(self.stdout)
        except ValueError:
            return None
        return loaded if isinstance(loaded, dict) else None

    @property
    def code(self) -> int | None:
        """The CNI error code, when the plugin failed with an error object."""
        answer = self.answer
        if self.status == 0 or answer is None:
            return None
        code = answer.get("code")
        return code if isinstance(code, int) else None

    @property
    def msg(self) -> str:
        return str((self.answer or {}).get("msg", ""))

    def answer_text(self) -> str:
        """The error's msg and details together."""
        return f"{self.msg} {(self.answer or {}).get('details', '')}"

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr

    def outcome(self) -> str:
        """success, error <code>, no CNI answer, killed, timeout: the table's words."""
        if self.timed_out:
            return "timeout"
        if self.status < 0:
            return f"killed by signal {-self.status}"
        if self.status == 0:
            return "success" if self.stdout.strip() == "" or self.answer else "success, bad answer"
        if self.code is not None:
            return f"error {self.code}"
        return "no CNI answer" + (" (traceback)" if self.traceback else "")


@dataclass(frozen=True)
class Attachment:
    container_id: str
    pod: Namespace
    ifname: str = "eth0"

    @property
    def record(self) -> str:
        return f"{self.container_id}:{self.ifname}"


# -- faults -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """``strace -e inject=<class>:error=<errno>:when=<when>`` in ``scope``.

    ``path`` narrows injection to calls naming that path (``strace -P``):
    ``execve`` of one program, wherever in the tree it is started. ``also``
    are further injections in the same run (a cleanup that fails too).
    """

    syscall: str
    errno: str
    when: str  # strace's when= expression: "3", "1+"
    scope: str = "plugin"
    path: str | None = None
    also: tuple[Fault, ...] = ()

    @property
    def label(self) -> str:
        where = f" of {Path(self.path).name}" if self.path else ""
        own = f"{self.syscall}{where}:{self.errno}:when={self.when}"
        return " + ".join([own, *(f.label.split(" (")[0] for f in self.also)]) + f" ({self.scope})"

    @property
    def group(self) -> str:
        """The table's row: the fault without its N."""
        where = f" of {Path(self.path).name}" if self.path else ""
        extra = "".join(f" + {f.syscall}:{f.errno}" for f in self.also)
        return f"{self.syscall}{where}{extra} {self.errno} ({self.scope})"

    def _inject(self) -> str:
        names = ",".join(SYSCALL_CLASSES[self.syscall])
        return f"inject={names}:error={self.errno}:when={self.when}"

    def strace_argv(self, trace_prefix: Path) -> list[str]:
        traced = [*SYSCALL_CLASSES[self.syscall], "execve"]
        for other in self.also:
            traced += SYSCALL_CLASSES[other.syscall]
        follow = ["-ff"] if self.scope == "tree" else []
        argv = [STRACE, "-qq", "-y", *follow, "-o", str(trace_prefix)]
        if self.path is not None:
            argv += ["-P", self.path]
        argv += ["-e", "trace=" + ",".join(dict.fromkeys(traced))]
        for fault in (self, *self.also):
            argv += ["-e", fault._inject()]
        return [*argv, "--"]


@dataclass(frozen=True)
class Call:
    """One traced system call: the program its process ran and strace's line for it."""

    program: str
    syscall: str
    line: str


_CALL = re.compile(r"^(\w+)\(")
_EXECVE = re.compile(r'^execve\("([^"]+)".* = 0')


def read_trace(prefix: Path) -> list[list[Call]]:
    """Every traced process's calls, in order; the plugin's process first.

    ``strace -o P`` writes P (the plugin alone); ``-ff -o P`` writes P.<pid> each.
    """
    processes: list[list[Call]] = []
    for file in sorted(prefix.parent.glob(prefix.name + "*")):
        # Without -f the one file is the plugin's; with -ff a process that
        # executed nothing is a thread (or a fork) of a delegate.
        program = "flannel" if file.name == prefix.name else "thread"
        found: list[tuple[str, str]] = []
        for line in file.read_text(errors="replace").splitlines():
            executed = _EXECVE.match(line)
            if executed:
                program = Path(executed.group(1)).name
            call = _CALL.match(line)
            if call:
                found.append((call.group(1), line))
        # A process is named after the last program it executed.
        processes.append([Call(program, syscall, line) for syscall, line in found])
    processes.sort(key=lambda calls: 0 if calls and calls[0].program == "flannel" else 1)
    return processes


def injected(prefix: Path) -> list[Call]:
    return [c for calls in read_trace(prefix) for c in calls if "(INJECTED)" in c.line]


class Sites:
    """Names for where a fault landed, from the paths strace decoded (-y)."""

    def __init__(self, rig: Rig) -> None:
        self.data_dir = str(rig.node.data_dir)
        self.subnet_file = str(rig.node.subnet_file)
        self.ipam_dir = str(rig.node.ipam_dir)
        self.plugin_dirs = (str(rig.node.bin_dir) + "/", str(REFERENCE_PLUGINS_DIR) + "/")
        self.script = f'"{rig.flannel}"'  # the plugin's own executable, read by its interpreter

    def name(self, call: Call) -> str:
        line = call.line
        if call.syscall.startswith("execve"):
            return "exec " + Path(line.split('"', 2)[1]).name
        where = f"{call.program}: "
        if self.data_dir in line:
            return where + "dataDir"
        if self.subnet_file in line:
            return where + "subnet.env"
        if self.ipam_dir in line:
            return where + "host-local dataDir"
        if re.match(r"^\w+\(1<", line):
            return where + "stdout"
        if re.match(r"^\w+\(2<", line):
            return where + "stderr"
        if "<pipe:" in line:
            return where + "pipe"
        if "/netns/" in line or "<net:[" in line:
            return where + "netns"
        if self.script in line:
            return where + START_UP
        if any(d in line for d in self.plugin_dirs):
            return where + "delegate executable"
        # The plugin's other files: the interpreter, its libraries and locale,
        # the plugin's modules (some are imported lazily, during the command).
        return where + (START_UP if call.program == "flannel" else "other")


# -- the rig ----------------------------------------------------------------------------------


@dataclass
class Rig:
    """A node (its own namespace, subnet.env, dataDir, host-local dir) and its pods."""

    node: Node
    scratch: Path
    _pods: int = 0
    _traces: int = 0

    @property
    def flannel(self) -> str:
        return str(self.node.bin_dir / "flannel")

    def config(self, version: str = CNI_VERSION, **flannel_keys: Any) -> JsonObject:
        conf: JsonObject = {
            "cniVersion": version,
            "name": NETWORK,
            "type": "flannel",
            "subnetFile": str(self.node.subnet_file),
            "dataDir": str(self.node.data_dir),
            "ipam": {"dataDir": str(self.node.ipam_dir)},
            "delegate": {"hairpinMode": True, "isDefaultGateway": True},
        }
        conf.update(flannel_keys)
        return conf

    @contextlib.contextmanager
    def attachment(self, ifname: str = "eth0") -> Iterator[Attachment]:
        """A fresh pod namespace and container ID; the namespace goes afterwards."""
        self._pods += 1
        pod = Namespace(f"{self.node.factory.prefix}-p{self._pods}"[:60]).create()
        try:
            yield Attachment(f"{self.node.label}c{self._pods}", pod, ifname)
        finally:
            pod.remove()

    def env(self, command: str, att: Attachment | None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_PATH": f"{self.node.bin_dir}:{REFERENCE_PLUGINS_DIR}",
            # warm_up() filled the interpreter's byte-code cache; a source edited
            # meanwhile must not add writes and shift every N.
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if att is not None:
            env |= {
                "CNI_CONTAINERID": att.container_id,
                "CNI_NETNS": att.pod.path,
                "CNI_IFNAME": att.ifname,
            }
        return env

    def argv(self, wrapper: Sequence[str] = ()) -> list[str]:
        return ["ip", "netns", "exec", self.node.ns.name, *wrapper, self.flannel]

    def invoke(
        self,
        command: str,
        att: Attachment | None,
        config: JsonObject | None = None,
        *,
        wrapper: Sequence[str] = (),
        timeout: float = INVOCATION_TIMEOUT,
    ) -> Run:
        """Run the plugin once in the node namespace; a hang is killed with its group."""
        started = time.monotonic()
        data = json.dumps(config if config is not None else self.config()).encode()
        with subprocess.Popen(
            self.argv(wrapper),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env(command, att),
            start_new_session=True,
        ) as proc:
            try:
                out, err = proc.communicate(data, timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                out, err = proc.communicate()
                timed_out = True
        return Run(
            proc.returncode,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
            time.monotonic() - started,
            timed_out,
        )

    def start(self, command: str, att: Attachment, config: JsonObject | None = None) -> Popen:
        """Start the plugin without waiting (to kill it); stdin is a file with the config."""
        stdin = self.scratch / f"stdin-{att.container_id}-{command}.json"
        stdin.write_text(json.dumps(config if config is not None else self.config()))
        with stdin.open("rb") as data:
            return subprocess.Popen(
                self.argv(),
                stdin=data,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.env(command, att),
            )

    def trace_prefix(self) -> Path:
        self._traces += 1
        directory = self.scratch / f"trace{self._traces}"
        directory.mkdir()
        return directory / "trace"

    # -- what the kernel and the files say ------------------------------------------------------

    def dir_entries(self) -> list[str]:
        return self.node.records()

    def records(self) -> list[str]:
        return [n for n in self.node.records() if not n.startswith(TEMP_PREFIX)]

    def temp_files(self) -> list[str]:
        return [n for n in self.node.records() if n.startswith(TEMP_PREFIX)]

    def pod_addresses(self, att: Attachment) -> list[str]:
        return [str(a) for a in att.pod.global_addresses(att.ifname)]

    def processes_in_node(self) -> list[tuple[int, str]]:
        """Live processes in the node's network namespace (delegates at work)."""
        node_ns = os.stat(self.node.ns.path).st_ino
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino != node_ns:
                    continue
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            comm, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2]
            if state not in "ZX":
                found.append((int(entry), comm))
        return found

    def wait_quiet(self, timeout: float = 10.0) -> list[tuple[int, str]]:
        """Wait until no process runs in the node namespace; those still running."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.processes_in_node()
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.02)

    def collect_garbage(self) -> Run:
        """The runtime's GC with no valid attachment, once temp files are an hour old."""
        old = time.time() - 3600
        for name in self.temp_files():
            os.utime(self.node.data_dir / name, (old, old), follow_symlinks=False)
        return self.invoke("GC", None, self.config("1.1.0", **{"cni.dev/valid-attachments": []}))

    def leaks(self, att: Attachment | None = None) -> list[str]:
        """What is left: records, files after a GC, reservations, veths, the pod's link."""
        problems = []
        if self.records():
            problems.append(f"records left: {self.records()}")
        else:
            gc = self.collect_garbage()
            if gc.status != 0:
                problems.append(f"GC failed: {gc.stdout.strip()}")
            if self.dir_entries():
                problems.append(f"files left after GC: {self.dir_entries()}")
        if self.node.reservations(NETWORK):
            problems.append(f"host-local reservations left: {self.node.reservations(NETWORK)}")
        if self.node.veths():
            problems.append(f"veths left in the node: {self.node.veths()}")
        if att is not None and att.ifname in att.pod.links():
            problems.append(f"{att.ifname} left in the pod")
        return problems

    def state(self) -> str:
        """What the node holds right now, in a few words (what a kill left)."""
        held = [
            *(["temp file"] if self.temp_files() else []),
            *(["record"] if self.records() else []),
            *(["reservation"] if self.node.reservations(NETWORK) else []),
            *(["veth"] if self.node.veths() else []),
        ]
        return "+".join(held) or "nothing"

    def clean_slate(self) -> None:
        """After a failed case: make the next one start from nothing."""
        for name in self.dir_entries():
            path = self.node.data_dir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        shutil.rmtree(self.node.ipam_dir, ignore_errors=True)
        for veth in self.node.veths():
            self.node.ns.sh("ip", "link", "del", veth, check=False)

    def added(self, run: Run, att: Attachment) -> list[str]:
        """Problems with a successful ADD: its result, the pod and the record must agree."""
        ips = (run.answer or {}).get("ips")
        if not isinstance(ips, list) or not ips or not isinstance(ips[0], dict):
            return [f"ADD succeeded without ips: {run.stdout.strip()!r}"]
        address = ip_interface(str(ips[0].get("address")))
        problems = []
        if address.ip not in SUBNET:
            problems.append(f"ADD gave {address}, outside {SUBNET}")
        if str(address) not in self.pod_addresses(att):
            problems.append(f"ADD said {address}, the pod has {self.pod_addresses(att)}")
        if att.record not in self.records():
            problems.append(f"ADD succeeded without its record {att.record}")
        return problems


def warm_up(rig: Rig) -> None:
    """Let the interpreter cache the plugin's byte code once, before anything is counted."""
    env = rig.env("VERSION", None)
    del env["PYTHONDONTWRITEBYTECODE"]
    subprocess.run([rig.flannel], input=b"", env=env, capture_output=True, check=True, timeout=60)


@contextlib.contextmanager
def rig_in(root: Path, label: str) -> Iterator[Rig]:
    """A rig whose namespaces (node, pods) are removed afterwards, even on failure."""
    requirements()
    scratch = root / "scratch"
    scratch.mkdir()
    with namespaces(label) as factory:
        rig = Rig(Node(factory, root, label), scratch)
        warm_up(rig)
        yield rig


@contextlib.contextmanager
def scratch_rig(label: str) -> Iterator[Rig]:
    """A rig in a temporary directory of its own (for the campaign script)."""
    with tempfile.TemporaryDirectory(prefix="flcni-") as root, rig_in(Path(root), label) as rig:
        yield rig


# -- operations -------------------------------------------------------------------------------


def command_of(op: str) -> str:
    return op.split("-", maxsplit=1)[0]


def prepare(rig: Rig, att: Attachment, op: str) -> list[str]:
    """Bring the attachment to where ``op`` starts: nothing, added, or its ifname taken."""
    if op in ("DEL", "DEL-unreadable"):
        setup = rig.invoke("ADD", att)
        if setup.status != 0:
            return [f"clean ADD before the fault failed: {setup.stdout}"]
        if op == "DEL-unreadable":
            (rig.node.data_dir / att.record).write_bytes(b"\0garbage")
        return []
    if op == "ADD-rollback":
        # A veth pair: this kernel may have no dummy links. bridge's ADD fails on it,
        # the plugin's rollback (the delegate's DEL) removes it and the record.
        att.pod.sh("ip", "link", "add", att.ifname, "type", "veth", "peer", "name", "taken0")
    return []


# -- profiles: how many calls an operation makes ---------------------------------------------


@dataclass(frozen=True)
class Profile:
    """The calls one clean operation makes, traced with -f, per fault class."""

    op: str
    plugin: dict[str, list[Call]]  # class -> the plugin process's calls, in order
    delegate_max: dict[str, int]  # class -> the most calls any one delegate process made
    execs: list[str]  # the programs started under the plugin, by path, in order

    def count(self, syscall: str, scope: str) -> int:
        """How many N to try: the plugin's calls; in the tree, the busiest delegate's.

        Beyond the busiest delegate's count a tree fault hits the plugin alone,
        which scope ``plugin`` tries already.
        """
        if scope == "plugin":
            return len(self.plugin[syscall])
        return self.delegate_max[syscall]

    def indices(self, syscall: str, keep: Callable[[Call], bool]) -> list[int]:
        """The N (1-based) of the plugin's calls of ``syscall`` that ``keep`` selects."""
        return [n for n, call in enumerate(self.plugin[syscall], 1) if keep(call)]


def _class_of(name: str) -> str | None:
    for cls, members in SYSCALL_CLASSES.items():
        if name in members:
            return cls
    return None


def profile(rig: Rig, op: str) -> Profile:
    """Trace one clean ``op`` and count its calls, the plugin's and every process's."""
    names = ",".join(n for members in SYSCALL_CLASSES.values() for n in members)
    prefix = rig.trace_prefix()
    wrapper = [STRACE, "-qq", "-y", "-ff", "-o", str(prefix), "-e", f"trace={names}", "--"]
    with rig.attachment() as att:
        problems = prepare(rig, att, op)
        run = rig.invoke(command_of(op), att, wrapper=wrapper)
        if problems or (run.status == 0) != (op != "ADD-rollback"):
            raise RigError(f"clean {op} under strace: {problems} {run.stdout} {run.stderr}")
        rig.invoke("DEL", att)
    processes = read_trace(prefix)
    if not processes or not processes[0] or processes[0][0].program != "flannel":
        raise RigError(f"no trace of the plugin's own process in {prefix.parent}")
    plugin: dict[str, list[Call]] = {cls: [] for cls in SYSCALL_CLASSES}
    tree: dict[str, int] = dict.fromkeys(SYSCALL_CLASSES, 0)
    execs = []
    for index, calls in enumerate(processes):
        counts: Counter[tuple[str, str]] = Counter()
        for call in calls:
            cls = _class_of(call.syscall)
            if cls is None:
                continue
            counts[(cls, call.syscall)] += 1
            if index == 0:
                plugin[cls].append(call)
            elif call.syscall == "execve":
                execs.append(call.line.split('"', 2)[1])
        for (cls, _), n in counts.items():
            if index > 0:
                tree[cls] = max(tree[cls], n)
    return Profile(op, plugin, tree, execs)


def profiles(rig: Rig, ops: Sequence[str] = OPERATIONS) -> dict[str, Profile]:
    return {op: profile(rig, op) for op in ops}


# -- cases ------------------------------------------------------------------------------------


@dataclass
class Case:
    """One fault or kill along one operation, and what followed."""

    op: str
    group: str  # the table's row
    label: str  # this case exactly
    outcome: str = ""
    msg: str = ""  # the faulted invocation's error message
    left: str = ""  # what the fault left for the retry (rig.state())
    said: list[str] = field(default_factory=list)  # the plugin's "flannel: " stderr lines
    sites: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    succeeded: bool = False  # the faulted invocation exited 0

    @property
    def failed(self) -> bool:
        return bool(self.problems)

    @property
    def delegates_fault(self) -> bool:
        """A failure a delegate made: the fault hit only a delegate's own files (the
        plugin's faults, if any, only at start-up), the delegate reported success
        all the same, and its state stayed behind. The plugin cannot know."""
        own = [s for s in self.sites if s.startswith("flannel: ") and not s.endswith(START_UP)]
        theirs = [s for s in self.sites if not s.startswith(("flannel: ", "exec "))]
        leaks_only = all("left" in p for p in self.problems)
        return self.failed and self.succeeded and bool(theirs) and not own and leaks_only


# A fault may leave no CNI answer at all where the interpreter cannot start
# (a module does not load) or the answer itself cannot be written.
NO_ANSWER_SITES: Final = (START_UP, "stdout")


def judge(op: str, run: Run, sites: Sequence[str]) -> list[str]:
    """Problems with a faulted invocation's own answer (leaks are looked for after the retry)."""
    problems = []
    if run.timed_out:
        problems.append("the faulted invocation hung")
    plugin_sites = [s.removeprefix("flannel: ") for s in sites if s.startswith("flannel: ")]
    # A module that cannot be loaded is reported as an internal error: fine.
    internal = run.code == INTERNAL_ERROR and run.msg.startswith(INTERNAL_MSG)
    if internal and START_UP not in plugin_sites:
        problems.append(f"internal error: {run.msg}")
    if run.traceback and START_UP not in plugin_sites:
        problems.append(f"traceback after a fault at {', '.join(sites) or 'nothing'}")
    no_answer_excused = any(s in NO_ANSWER_SITES for s in plugin_sites)
    if run.status > 0 and run.code is None and not no_answer_excused:
        problems.append(f"exit {run.status} without a CNI error object: {run.stdout.strip()!r}")
    if run.status == 0 and op == "ADD-rollback":
        problems.append("ADD succeeded although its delegate failed")
    if run.status == 0 and command_of(op) == "DEL" and run.stdout.strip():
        problems.append(f"DEL printed {run.stdout.strip()!r}")
    return problems


def retry(rig: Rig, op: str, att: Attachment, faulted: Run, style: str) -> list[str]:
    """The runtime's retry after ``faulted``: DEL; or, after a failed ADD, ADD then DEL.

    An ADD that failed with an error object has undone what it did (its
    rollback), so the same ADD again must succeed; unless it said that the
    rollback failed too and kept its record for the runtime's DEL: then the
    retried ADD may fail, and the DEL must still clean everything. After a
    success, or with no answer at all, the runtime's next step is DEL.
    """
    problems = []
    if command_of(op) == "ADD" and faulted.status == 0:
        problems += rig.added(faulted, att)
    if command_of(op) == "ADD" and style == "add-del" and faulted.code is not None:
        # The runtime retries on a clean interface name: remove what was in the way.
        if op == "ADD-rollback" and "taken0" in att.pod.links():
            att.pod.sh("ip", "link", "del", "taken0", check=False)
        again = rig.invoke("ADD", att)
        if again.status == 0:
            problems += rig.added(again, att)
        elif ROLLBACK_FAILED not in faulted.stderr:
            problems.append(f"retried ADD failed after a rolled-back ADD: {again.stdout.strip()}")
    deleted = rig.invoke("DEL", att)
    if deleted.status != 0:
        problems.append(f"retried DEL failed: {deleted.stdout.strip()}")
    return problems


def _finish(rig: Rig, case: Case, att: Attachment, started: float) -> Case:
    left = rig.wait_quiet()
    if left:
        case.problems.append(f"still running in the node 10 s later: {left}")
    # In ADD-rollback the pod's interface name was taken before ADD: while the
    # taker's peer is there, that interface is the taker's, not a leak.
    case.problems += rig.leaks(None if "taken0" in att.pod.links() else att)
    if case.failed:
        rig.clean_slate()
    case.seconds = time.monotonic() - started
    return case


def fault_case(rig: Rig, op: str, fault: Fault, style: str = "del") -> Case:
    """Fault one ``op``, retry as a runtime does, and look for leaks."""
    retried = "" if command_of(op) == "DEL" else f", retry {style}"
    case = Case(op, fault.group, fault.label + retried)
    started = time.monotonic()
    with rig.attachment() as att:
        case.problems += prepare(rig, att, op)
        prefix = rig.trace_prefix()
        run = rig.invoke(command_of(op), att, wrapper=fault.strace_argv(prefix))
        sites = Sites(rig)
        case.sites = [sites.name(c) for c in injected(prefix)] or ["not reached"]
        shutil.rmtree(prefix.parent)
        case.outcome, case.msg, case.left = run.outcome(), run.msg, rig.state()
        case.succeeded = run.status == 0
        case.said = [ln for ln in run.stderr.splitlines() if ln.startswith("flannel: ")]
        case.problems += judge(op, run, case.sites)
        case.problems += retry(rig, op, att, run, style)
        return _finish(rig, case, att, started)


def kill_case(rig: Rig, op: str, delay: float) -> Case:
    """SIGKILL the plugin ``delay`` seconds into ``op``; retry; look for leaks and orphans.

    The outcome says what the kill left for the retry; the sites, which
    processes still ran in the node 50 ms after the kill.
    """
    case = Case(op, "SIGKILL at a random point", f"SIGKILL after {delay * 1000:.0f} ms")
    started = time.monotonic()
    with rig.attachment() as att:
        case.problems += prepare(rig, att, op)
        proc = rig.start(command_of(op), att)
        time.sleep(delay)
        proc.kill()
        out, err = proc.communicate()
        run = Run(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), 0)
        time.sleep(0.05)
        case.sites = [f"{comm} running 50 ms after" for _, comm in rig.processes_in_node()]
        left = rig.wait_quiet()
        if left:
            case.problems.append(f"orphans still running 10 s after the kill: {left}")
        case.left = rig.state()
        if run.status == -signal.SIGKILL:
            case.outcome = f"killed, left {case.left}"
        else:
            case.outcome = f"finished first: {run.outcome()}"
            case.problems += judge(op, run, [])
        case.problems += retry(rig, op, att, run, "del")
        return _finish(rig, case, att, started)


def clean_duration(rig: Rig, op: str, repeat: int = 3) -> float:
    """The median wall time of a clean ``op`` (the range of kill delays)."""
    times = []
    for _ in range(repeat):
        with rig.attachment() as att:
            prepare(rig, att, op)
            times.append(rig.invoke(command_of(op), att).seconds)
            rig.invoke("DEL", att)
    return sorted(times)[len(times) // 2]


# -- enumeration ------------------------------------------------------------------------------


def every_n(
    profiles: dict[str, Profile],
    syscalls: Sequence[str],
    errnos: Sequence[str],
    scopes: Sequence[str],
    max_n: int | None = None,
) -> list[tuple[str, Fault]]:
    """Every (operation, fault): each N along each profiled operation, per scope and errno.

    ``execve`` is enumerated by program (``strace -f -P``): each program
    started under the plugin, failed wherever it is started.
    """
    cases: list[tuple[str, Fault]] = []
    for op, prof in profiles.items():
        for syscall in syscalls:
            for errno in errnos:
                if syscall == "execve":
                    cases += [
                        (op, Fault("execve", errno, "1", "tree", path))
                        for path in dict.fromkeys(prof.execs)
                    ]
                    continue
                for scope in scopes:
                    count = prof.count(syscall, scope)
                    last = count if max_n is None else min(count, max_n)
                    cases += [
                        (op, Fault(syscall, errno, str(n), scope)) for n in range(1, last + 1)
                    ]
    return cases


# -- the table --------------------------------------------------------------------------------

Row = tuple[str, str, int, str, str, str]


def summarise(cases: Sequence[Case]) -> list[Row]:
    """Rows (class, op, cases, outcomes, sites, failures), one per fault class and op."""
    groups: dict[tuple[str, str], list[Case]] = {}
    for case in cases:
        groups.setdefault((case.group, case.op), []).append(case)
    rows = []
    for (group, op), members in groups.items():
        outcomes = Counter(c.outcome for c in members)
        sites = Counter(s for c in members for s in dict.fromkeys(c.sites))
        rows.append(
            (
                group,
                op,
                len(members),
                ", ".join(f"{o} x{n}" for o, n in outcomes.most_common()),
                ", ".join(f"{s} x{n}" for s, n in sites.most_common()),
                _failures(members),
            )
        )
    return rows


def _failures(cases: Sequence[Case]) -> str:
    failed = sum(c.failed for c in cases)
    theirs = sum(c.delegates_fault for c in cases)
    return f"{failed} ({theirs} a delegate's)" if theirs else str(failed)


def data_dir_calls(rig: Rig) -> Callable[[Call], bool]:
    """Selects the plugin's calls on dataDir (and subnet.env) paths or descriptors."""
    paths = (str(rig.node.data_dir), str(rig.node.subnet_file))
    return lambda call: any(p in call.line for p in paths)


def cleanup_faults(rig: Rig, prof: Profile, errnos: Sequence[str]) -> list[Fault]:
    """Each dataDir write, fsync and rename of ``prof`` failed, and every unlink too.

    The plugin's cleanup of its temporary file fails then; a GC must remove it.
    """
    faults = []
    for syscall in ("write", "fsync", "rename"):
        for n in prof.indices(syscall, data_dir_calls(rig)):
            for errno in errnos:
                also = (Fault("unlink", errno, "1+"),)
                faults.append(Fault(syscall, errno, str(n), "plugin", None, also))
    return faults
