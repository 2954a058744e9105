"""One function per CNI command: gather inputs, ask the core, act (spec §2, §5, §6).

What only some commands use (subnet.env and rendering, the drift check, CHECK's
routes) is imported where it is used: every import costs every plugin start, and
DEL, the command that runs on every pod stop, needs none of it while its record
is readable (docs/performance.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from functools import partial
from typing import IO, Final

from returns.result import Failure, Result, Success

from core.delegate_output import supported_versions
from core.environment import Invocation
from core.errors import CniError, Code
from core.jsonvalue import JsonObject, encode
from core.netconf import VALID_ATTACHMENTS_KEY, NetConf
from core.records import (
    NETNS_ATTRIBUTE,
    TEMP_ABANDONED_AFTER_SECONDS,
    TEMP_PREFIX,
    decode_record,
    is_stale,
    legacy_record_name,
    parse_record_name,
    record_name,
    with_prev_result,
)
from core.versions import LATEST
from shell.delegate import Delegates
from shell.store import MAX_RECORD_BYTES, StateDir

# A Go-plugin record does not say which interface it was for; Kubernetes uses eth0.
LEGACY_IFNAME: Final = "eth0"
# Where `ip netns` (and runtimes using it) name namespaces.
NAMED_NETNS_DIRS: Final = ("/run/netns/", "/var/run/netns/")

Answer = Result[JsonObject | None, CniError]


class Context:
    """One invocation's inputs and means.

    A plain class, not a NamedTuple: nothing compares or copies it, and building
    a NamedTuple class costs every start about 0.1 ms.
    """

    __slots__ = ("conf", "delegates", "invocation", "stderr")

    def __init__(
        self, invocation: Invocation, conf: NetConf, delegates: Delegates, stderr: IO[str]
    ) -> None:
        self.invocation = invocation
        self.conf = conf
        self.delegates = delegates
        self.stderr = stderr

    def log(self, message: str) -> None:
        """A line for the runtime's log. A broken stderr (EIO, a closed pipe) never
        changes the answer: the line is lost, the command goes on."""
        with contextlib.suppress(OSError, ValueError):
            self.stderr.write(f"flannel: {message}\n")
            self.stderr.flush()


def _rendered(ctx: Context) -> Result[JsonObject, CniError]:
    from core.render import render_delegate
    from shell.lease import read_lease

    return read_lease(ctx.conf.subnet_file).map(lambda lease: render_delegate(ctx.conf, lease))


def _with_store(
    ctx: Context, create: bool, absent: Answer, use: Callable[[StateDir], Answer]
) -> Answer:
    opened = StateDir.open(ctx.conf.data_dir, create=create)
    match opened:
        case Failure(error):
            return Failure(error)
        case Success(None):
            return absent
        case Success(StateDir() as store):
            try:
                return use(store)
            finally:
                store.close()
    raise AssertionError("unreachable")


def add(ctx: Context) -> Answer:
    """Render, store, execute; on failure roll the delegate back (spec §5, §6)."""
    return _rendered(ctx).bind(
        lambda rendered: ctx.delegates.find(str(rendered["type"])).bind(
            lambda _exe: _with_store(
                ctx,
                True,
                Success(None),
                lambda store: _add_stored(ctx, store, rendered),
            )
        )
    )


def _add_stored(ctx: Context, store: StateDir, rendered: JsonObject) -> Answer:
    name = record_name(ctx.invocation.container_id, ctx.invocation.ifname)
    netns = {NETNS_ATTRIBUTE: ctx.invocation.netns}
    encoded = encode(rendered)
    if len(encoded) > MAX_RECORD_BYTES:  # DEL could not read it back
        return Failure(
            CniError(
                Code.INVALID_NETWORK_CONFIG,
                f"the delegate configuration is {len(encoded)} bytes; a state record holds"
                f" at most {MAX_RECORD_BYTES}: shrink delegate, ipam or runtimeConfig",
            )
        )
    written = store.write(name, encoded, netns)
    if isinstance(written, Failure):
        return written
    config = with_prev_result(rendered, ctx.conf.prev_result)
    result = ctx.delegates.call(config, "ADD")
    if isinstance(result, Failure):
        if ctx.delegates.last_started:
            _roll_back(ctx, store, name, config, result.failure())
        else:  # the delegate never ran: nothing to undo but the record
            _remove_after_failed_add(ctx, store, name)
    return result


def _remove_after_failed_add(ctx: Context, store: StateDir, name: str) -> None:
    removed = store.remove(name)
    if isinstance(removed, Failure):
        ctx.log(f"{removed.failure().msg}; the runtime's DEL will remove it")


def _roll_back(
    ctx: Context, store: StateDir, name: str, config: JsonObject, error: CniError
) -> None:
    undone = ctx.delegates.call(config, "DEL")
    # A delegate that refused the config's version did nothing to undo.
    if isinstance(undone, Success) or error.code == Code.INCOMPATIBLE_VERSION:
        _remove_after_failed_add(ctx, store, name)
        return
    ctx.log(
        f"ADD failed and so did the delegate's DEL ({undone.failure().msg});"
        f" record {name} kept so that the runtime's DEL can release what ADD took"
    )


class _Replay:
    __slots__ = ("config", "file", "fresh")

    def __init__(self, file: str, config: JsonObject, fresh: bool) -> None:
        self.file = file
        self.config = config
        self.fresh = fresh  # the record was unreadable; config is a fresh rendering


def _find_record(ctx: Context, store: StateDir) -> tuple[str, Result[JsonObject, CniError]] | None:
    """This plugin's record for the attachment, else the Go plugin's, decoded.

    A Go record is named after the container ID alone, so it is taken only
    when it belongs to this network: another flannel network sharing dataDir
    may have stored it.
    """
    inv = ctx.invocation
    ours = record_name(inv.container_id, inv.ifname)
    legacy = legacy_record_name(inv.container_id)
    for file in (ours, legacy):
        match store.read(file):
            case Success(None):
                continue
            case Success(bytes() as data):
                record = decode_record(data, file).alt(partial(_naming, store, file))
                if file == legacy and not _same_network(ctx, record):
                    continue
                return file, record
            case Failure(error):
                return file, Failure(error)
    return None


def _naming(store: StateDir, file: str, error: CniError) -> CniError:
    """A record's decoding error names the record, so that an operator can find it."""
    if file in error.msg:
        return error
    return CniError(error.code, f"{error.msg} ({store.path}/{file})", error.details)


def _same_network(ctx: Context, record: Result[JsonObject, CniError]) -> bool:
    return isinstance(record, Success) and record.unwrap().get("name") == ctx.conf.name


def delete(ctx: Context) -> Answer:
    """Replay the stored rendering; remove the record only once the delegate agreed."""
    return _with_store(ctx, False, Success(None), lambda store: _delete_in(ctx, store))


def _delete_in(ctx: Context, store: StateDir) -> Answer:
    found = _find_record(ctx, store)
    if found is None:
        return Success(None)  # nothing stored: DEL is idempotent
    file, record = found
    return _replay(ctx, file, record).bind(lambda replay: _delete_replayed(ctx, store, replay, {}))


def _replay(
    ctx: Context, file: str, record: Result[JsonObject, CniError]
) -> Result[_Replay, CniError]:
    match record:
        case Success(config):
            return Success(_Replay(file, config, fresh=False))
        case Failure(error):
            ctx.log(f"{error.msg}; replaying a fresh rendering instead")
            return _rendered(ctx).map(lambda config: _Replay(file, config, fresh=True))
    raise AssertionError("unreachable")


def _delete_replayed(
    ctx: Context, store: StateDir, replay: _Replay, overrides: dict[str, str]
) -> Answer:
    config = with_prev_result(replay.config, ctx.conf.prev_result)
    deleted = ctx.delegates.call(config, "DEL", overrides)
    if isinstance(deleted, Failure):
        return deleted  # the record stays, so a retried DEL can still release
    removed = store.remove(replay.file)
    if not replay.fresh:
        return removed.map(lambda _: None)
    # The delegate released what it had; junk that cannot go must not block DEL forever.
    match removed:
        case Success(_):
            ctx.log(f"removed unreadable state record {store.path}/{replay.file}")
        case Failure(error):
            ctx.log(f"{error.msg}; left it, the delegate's DEL succeeded")
    return Success(None)


def check(ctx: Context) -> Answer:
    """The delegate's CHECK on the stored rendering, after a subnet drift check."""
    missing: Answer = Failure(_no_record(ctx))
    return _with_store(ctx, False, missing, lambda store: _check_in(ctx, store))


def _no_record(ctx: Context) -> CniError:
    inv = ctx.invocation
    return CniError(
        Code.UNKNOWN_CONTAINER,
        f"no state record for container {inv.container_id} interface {inv.ifname}"
        f" in {ctx.conf.data_dir}: this plugin did not ADD it",
    )


def _check_in(ctx: Context, store: StateDir) -> Answer:
    from core.drift import check_drift
    from shell.lease import read_lease

    found = _find_record(ctx, store)
    if found is None:
        return Failure(_no_record(ctx))
    _, record = found
    return record.bind(
        lambda record: (
            read_lease(ctx.conf.subnet_file)
            .bind(lambda lease: check_drift(record, lease))
            .map(lambda _: with_prev_result(record, _check_prev_result(ctx.conf)))
        )
    ).bind(lambda config: ctx.delegates.call(config, "CHECK"))


def _check_prev_result(conf: NetConf) -> JsonObject | None:
    from core.check_routes import with_route_gateways

    if conf.prev_result is None:
        return None
    return with_route_gateways(conf.prev_result)


def status(ctx: Context) -> Answer:
    """Success when ADD could be served now; error 50 saying why not otherwise.

    Ready means: subnet.env is complete, the delegate is in CNI_PATH and speaks
    the configuration's cniVersion. As that version is 1.1.0 or later, the
    delegate then knows STATUS too, and its own answer is passed on unchanged.
    """
    ready = _rendered(ctx).bind(
        lambda rendered: _delegate_speaks(ctx, rendered).map(lambda _: rendered)
    )
    match ready:
        case Failure(error):
            return Failure(
                CniError(Code.NOT_AVAILABLE, f"cannot add containers: {error.msg}", error.details)
            )
        case Success(rendered):
            return ctx.delegates.call(rendered, "STATUS")
    raise AssertionError("unreachable")


def _delegate_speaks(ctx: Context, rendered: JsonObject) -> Result[bool, CniError]:
    """Error when the delegate's VERSION does not list the rendered cniVersion."""
    version = str(rendered.get("cniVersion", ctx.conf.cni_version))
    return _delegate_versions(ctx, str(rendered["type"])).bind(
        lambda listed: (
            Success(True)
            if version in listed
            else Failure(
                CniError(
                    Code.INCOMPATIBLE_VERSION,
                    f"delegate {rendered['type']!r} does not support cniVersion {version}",
                    "it supports " + ", ".join(listed),
                )
            )
        )
    )


def _delegate_versions(ctx: Context, plugin_type: str) -> Result[tuple[str, ...], CniError]:
    probe = {"cniVersion": LATEST, "type": plugin_type}
    return ctx.delegates.call(probe, "VERSION").map(supported_versions)


def _forward_gc(ctx: Context, rendered: JsonObject) -> Answer:
    """Pass GC on to a delegate that knows it (its VERSION lists 1.1.0)."""
    config = {**rendered, VALID_ATTACHMENTS_KEY: _attachment_list(ctx.conf)}
    return _delegate_versions(ctx, str(rendered["type"])).bind(
        lambda listed: ctx.delegates.call(config, "GC") if LATEST in listed else Success(None)
    )


def gc(ctx: Context) -> Answer:
    """Release stale attachments, forward GC, and report every problem at once."""
    problems = _with_store(ctx, False, Success(None), lambda store: _gc_in(ctx, store))
    errors: list[CniError] = []
    if isinstance(problems, Failure):
        errors.append(problems.failure())
    forwarded = _rendered(ctx).bind(lambda rendered: _forward_gc(ctx, rendered))
    if isinstance(forwarded, Failure):
        errors.append(forwarded.failure())
    if not errors:
        return Success(None)
    return Failure(
        CniError(
            errors[0].code,
            f"GC finished with {len(errors)} problem(s): {errors[0].msg}",
            "; ".join(f"{e.msg} ({e.details})" if e.details else e.msg for e in errors),
        )
    )


def _attachment_list(conf: NetConf) -> list[dict[str, str]]:
    return [{"containerID": c, "ifname": i} for c, i in sorted(conf.valid_attachments)]


def _gc_in(ctx: Context, store: StateDir) -> Answer:
    names = store.names()
    if isinstance(names, Failure):
        return names
    errors: list[CniError] = []
    for file in names.unwrap():
        outcome = _gc_one(ctx, store, file)
        if isinstance(outcome, Failure):
            errors.append(outcome.failure())
    if errors:
        return Failure(
            CniError(
                errors[0].code,
                f"{len(errors)} stale record(s) could not be released",
                "; ".join(e.msg for e in errors),
            )
        )
    return Success(None)


def _gc_one(ctx: Context, store: StateDir, file: str) -> Answer:
    if file.startswith(TEMP_PREFIX):
        return _gc_temp(store, file)
    name = parse_record_name(file)
    if name is None or not is_stale(name, ctx.conf.valid_attachments):
        return Success(None)
    record = store.read(file).bind(lambda data: decode_record(data or b"", file))
    if not _same_network(ctx, record) and (isinstance(record, Success) or name.ifname is None):
        # Another network's record (sharing dataDir): its own GC decides. A file
        # named like a bare container ID is a (Go) record only when it says so.
        return Success(None)
    # An unreadable record of ours cannot say its network. Releasing it with this
    # network's rendering frees only what this network holds for an attachment
    # it no longer has, so it is safe either way.
    overrides = {
        "CNI_CONTAINERID": name.container_id,
        "CNI_IFNAME": name.ifname or LEGACY_IFNAME,
        "CNI_NETNS": _live_named_netns(store.attribute(file, NETNS_ATTRIBUTE)),
        "CNI_ARGS": "",
    }
    return (
        _replay(ctx, file, record)
        .bind(lambda replay: _delete_replayed(ctx, store, replay, overrides))
        .alt(lambda e: CniError(e.code, f"{file}: {e.msg}", e.details))
    )


def _live_named_netns(path: str | None) -> str:
    """The stale attachment's namespace, when it is a named one that still exists.

    With it the delegate's DEL removes the interface and its rules (the bridge
    drops its masquerade chain only when it finds the link); without, it only
    releases the address. A /proc/<pid>/ns/net path is never reused: the PID may
    belong to another process by now.
    """
    if path is None or not path.startswith(NAMED_NETNS_DIRS) or "/../" in path:
        return ""
    return path if os.path.exists(path) else ""


def _gc_temp(store: StateDir, file: str) -> Answer:
    """Remove an interrupted ADD's temporary file.

    GC runs alone only within its network; an ADD of another network sharing
    dataDir may be writing right now, so only files older than any write are taken.
    """
    age = store.age(file)
    if age is None or age < TEMP_ABANDONED_AFTER_SECONDS:
        return Success(None)
    return store.remove(file).map(lambda _: None)
