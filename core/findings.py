"""``doctor``'s verdicts: gathered facts in, one finding per check out.

Each function judges one kind of fact the way the plugin would meet it at
ADD, DEL or CHECK time, and says in its message what the operator can do.
Nothing here reads the node; the shell gathers, this decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from returns.result import Failure, Result, Success

from core.conflist import (
    FLANNEL_TYPE,
    ConfListing,
    FlannelNetwork,
    flannel_network,
    has_flannel,
    plugin_types,
)
from core.display import format_age, status_line
from core.drift import check_drift
from core.errors import CniError
from core.facts import (
    DIRECTORY,
    REGULAR,
    SYMLINK,
    DataDirFacts,
    EntryFacts,
    PluginFacts,
    SubnetFacts,
)
from core.jsonvalue import JsonObject
from core.record_summary import summarise
from core.records import (
    DATA_DIR_MODE,
    RECORD_MODE,
    TEMP_ABANDONED_AFTER_SECONDS,
    TEMP_PREFIX,
    parse_record_name,
)
from core.subnet_env import Lease
from core.targets import Target, subnet_file_for

CONF: Final = "conf"
SUBNET_ENV: Final = "subnet.env"
PLUGIN: Final = "plugin"
DATA_DIR: Final = "dataDir"
RECORD: Final = "record"

# As the plugin's GC: a record is written and renamed in milliseconds.
ROOT_UID: Final = 0
DEBIAN_HINT: Final = "(Debian: containernetworking-plugins)"
FLANNEL_HINT: Final = '(cp "$(command -v flannel)" into one of them, see README "Install")'


@dataclass(frozen=True, slots=True)
class Finding:
    """One check: what was looked at, whether it is fine, and what it means."""

    check: str
    ok: bool
    subject: str
    message: str

    def line(self) -> str:
        """The human form: status, check, subject, message on one line."""
        return status_line(self.ok, self.check, self.subject, self.message)

    def to_object(self) -> JsonObject:
        return {
            "check": self.check,
            "ok": self.ok,
            "subject": self.subject,
            "message": self.message,
        }


def report(findings: Sequence[Finding]) -> JsonObject:
    """The ``--json`` answer: ok only when every check is."""
    return {"ok": all(f.ok for f in findings), "checks": [f.to_object() for f in findings]}


def _ok(check: str, subject: str, message: str) -> Finding:
    return Finding(check, True, subject, message)


def _problem(check: str, subject: str, message: str) -> Finding:
    return Finding(check, False, subject, message)


def _about(subject: str, msg: str) -> str:
    """A message without its leading subject, which the finding already names."""
    for prefix in (f"{subject} ", f"{subject}: ", f"{subject!r} "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


# -- configuration --------------------------------------------------------------------


def conf_findings(
    conf_dir: str, listing: ConfListing
) -> tuple[list[Finding], list[FlannelNetwork]]:
    """Every configuration file the runtime would load, and flannel's networks in them."""
    match listing:
        case Failure(error):
            return [_problem(CONF, conf_dir, _about(conf_dir, error.msg))], []
        case Success(files):
            pass
    findings: list[Finding] = []
    networks: list[FlannelNetwork] = []
    for path, parsed in files:
        match parsed:
            case Failure(error):
                findings.append(_problem(CONF, path, _about(path, error.msg)))
            case Success(network) if has_flannel(network):
                match flannel_network(network):
                    case Failure(error):
                        findings.append(
                            _problem(CONF, path, f"flannel entry: {_about(path, error.msg)}")
                        )
                    case Success(flannel):
                        networks.append(flannel)
                        findings.append(_ok(CONF, path, _describe(flannel)))
    if not networks:
        findings.append(
            _problem(
                CONF,
                conf_dir,
                "no network configuration here has a plugin of type 'flannel': the runtime"
                " never calls flannel (checking the plugin's default paths instead)",
            )
        )
    return findings, networks


def _describe(flannel: FlannelNetwork) -> str:
    network = flannel.network
    return (
        f"network {network.display_name} (cniVersion {network.version}) needs"
        f" {', '.join(plugin_types(flannel))}; subnetFile {flannel.conf.subnet_file},"
        f" dataDir {flannel.conf.data_dir}"
    )


# -- subnet.env -------------------------------------------------------------------------


def subnet_finding(facts: SubnetFacts) -> Finding:
    """Present, complete and parseable; its age is reported, never judged."""
    age = f" (age {format_age(facts.age)})" if facts.age is not None else ""
    match facts.lease:
        case Failure(error):
            return _problem(SUBNET_ENV, facts.path, _about(facts.path, error.msg) + age)
        case Success(lease):
            return _ok(SUBNET_ENV, facts.path, f"complete{age}: {_describe_lease(lease)}")
    raise AssertionError("unreachable")


def _describe_lease(lease: Lease) -> str:
    subnets = [str(s) for s in (lease.subnet4, lease.subnet6) if s is not None]
    networks = [str(n) for n in (*lease.networks4, *lease.networks6)]
    return (
        f"subnet {', '.join(subnets)}, network {', '.join(networks)}, mtu {lease.mtu},"
        f" ipmasq {'true' if lease.ipmasq else 'false'}"
    )


# -- plugins ------------------------------------------------------------------------------


def plugin_finding(facts: PluginFacts) -> Finding:
    """Found and executable in the CNI path, and speaks every version its networks use."""
    subject = facts.plugin_type
    match facts.executable:
        case Failure(error):
            return _problem(PLUGIN, subject, _not_found(subject, error.msg))
        case Success(executable):
            pass
    match facts.versions:
        case None:
            return _problem(PLUGIN, subject, f"{executable}: VERSION was not asked")
        case Failure(error):
            return _problem(PLUGIN, subject, f"{executable}: VERSION failed: {error.msg}")
        case Success(versions):
            pass
    if not versions:
        return _problem(PLUGIN, subject, f"{executable}: VERSION lists no supported versions")
    supported = f"{executable} supports {', '.join(versions)}"
    unserved = [need for need in facts.needs if need.version not in versions]
    if unserved:
        wanted = ", ".join(f"network {n.network} uses {n.version}" for n in unserved)
        return _problem(
            PLUGIN, subject, f"{supported}; {wanted}: ADD fails with error 1 (use a listed version)"
        )
    used = ", ".join(f"{n.network} {n.version}" for n in facts.needs)
    return _ok(PLUGIN, subject, f"{supported}{f' (uses: {used})' if used else ''}")


def _not_found(plugin_type: str, msg: str) -> str:
    """find_plugin's message, about a plugin rather than a delegate, with the right remedy.

    A missing flannel is not in Debian's plugins package: it is this plugin.
    """
    text = _about(f"delegate plugin {plugin_type!r}", msg)
    if plugin_type == FLANNEL_TYPE and text.endswith(DEBIAN_HINT):
        text = text[: -len(DEBIAN_HINT)] + FLANNEL_HINT
    return text


# -- dataDir and its records ----------------------------------------------------------------


def data_dir_findings(
    facts: DataDirFacts, found: Sequence[Target], leases: Mapping[str, Result[Lease, CniError]]
) -> list[Finding]:
    """dataDir: root's, 0700, a real directory; then every entry in it."""
    info = facts.info
    if info is None and facts.error is not None:
        return [_problem(DATA_DIR, facts.path, facts.error)]
    if info is None:
        return [_ok(DATA_DIR, facts.path, "does not exist yet: the first ADD creates it")]
    if info.kind == SYMLINK:
        return [
            _problem(
                DATA_DIR,
                facts.path,
                "is a symlink, which the plugin refuses: point dataDir at a real directory",
            )
        ]
    if info.kind != DIRECTORY:
        return [_problem(DATA_DIR, facts.path, f"is a {info.kind}, not a directory")]
    problems = []
    if info.uid != ROOT_UID:
        problems.append(f"is owned by uid {info.uid}, not root: chown root {facts.path}")
    if info.mode & 0o077:
        problems.append(
            f"has mode {info.mode:04o}, not {DATA_DIR_MODE:04o}: others can reach the records"
            f" (chmod {DATA_DIR_MODE:o} {facts.path})"
        )
    if facts.error is not None:
        problems.append(facts.error)
    findings = [_problem(DATA_DIR, facts.path, p) for p in problems]
    if not findings:
        count = sum(1 for e in facts.entries if parse_record_name(e.file) is not None)
        findings.append(
            _ok(DATA_DIR, facts.path, f"owned by root, mode {info.mode:04o}, {count} record(s)")
        )
    for entry in facts.entries:
        lease = _lease_for(entry, facts.path, found, leases)
        findings.extend(entry_findings(facts.path, entry, lease))
    return findings


def _lease_for(
    entry: EntryFacts,
    data_dir: str,
    found: Sequence[Target],
    leases: Mapping[str, Result[Lease, CniError]],
) -> Lease | None:
    network = entry.content.value_or({}).get("name") if entry.content is not None else None
    subnet_file = subnet_file_for(found, data_dir, network)
    lease = leases.get(subnet_file) if subnet_file is not None else None
    return lease.value_or(None) if lease is not None else None


def entry_findings(data_dir: str, entry: EntryFacts, lease: Lease | None) -> list[Finding]:
    """One entry of dataDir: a healthy record gives one ok line, else one per problem.

    ``lease`` is the node's current lease (None when subnet.env is unusable:
    its own finding says so, and drift is not judged against nothing).
    """
    if entry.file.startswith(TEMP_PREFIX):
        if entry.info.age < TEMP_ABANDONED_AFTER_SECONDS:
            return []  # an ADD is writing it right now
        return [
            _problem(
                RECORD,
                entry.file,
                f"temporary file left by an interrupted ADD (age {format_age(entry.info.age)}):"
                " the plugin's GC removes it",
            )
        ]
    name = parse_record_name(entry.file)
    if name is None:
        return [_problem(RECORD, entry.file, f"is not a state record, yet it is in {data_dir}")]
    if entry.info.kind != REGULAR:
        if entry.info.kind == SYMLINK:
            what = "a symlink: the plugin never follows one"
        else:
            what = f"a {entry.info.kind}, not a record file"
        return [_problem(RECORD, entry.file, f"is {what}; remove it")]
    problems = _file_problems(entry)
    summary = summarise(data_dir, name, entry)
    if summary.error is not None:
        problems.append(f"cannot be read ({summary.error}): DEL replays a fresh rendering instead")
    if entry.netns is not None and entry.netns_exists is False:
        problems.append(f"namespace {entry.netns} no longer exists: DEL or GC will release it")
    if lease is not None and isinstance(entry.content, Success):
        drift = check_drift(entry.content.unwrap(), lease)
        if isinstance(drift, Failure):
            problems.append(drift.failure().msg)
    if problems:
        return [_problem(RECORD, entry.file, p) for p in problems]
    netns = (
        f"namespace {entry.netns} exists"
        if entry.netns is not None
        else "namespace unknown (none recorded)"
    )
    subnets = ", ".join(summary.subnets) or "no subnet"
    return [
        _ok(
            RECORD,
            entry.file,
            f"{summary.delegate_type} {subnets}, {netns} (age {format_age(entry.info.age)})",
        )
    ]


def _file_problems(entry: EntryFacts) -> list[str]:
    info = entry.info
    problems = []
    if info.uid != ROOT_UID:
        problems.append(f"is owned by uid {info.uid}, not root")
    if info.mode != RECORD_MODE:
        problems.append(f"has mode {info.mode:04o}, not {RECORD_MODE:04o}")
    return problems
