"""The network configuration on stdin, validated into a :class:`NetConf` (spec §2, §4)."""

from typing import Any, Final, NamedTuple

from returns.result import Failure, Result, Success

from core.errors import CniError, Code
from core.jsonvalue import JsonObject, decode_object, type_name
from core.names import ifname_problem, is_valid_id, is_valid_plugin_type
from core.versions import (
    COMMAND_SINCE,
    IMPLICIT_VERSION,
    SUPPORTED_VERSIONS,
    command_allowed,
)

DEFAULT_SUBNET_FILE: Final = "/run/flannel/subnet.env"
DEFAULT_DATA_DIR: Final = "/var/lib/cni/flannel"
DEFAULT_DELEGATE_TYPE: Final = "bridge"
DEFAULT_IPAM_TYPE: Final = "host-local"
VALID_ATTACHMENTS_KEY: Final = "cni.dev/valid-attachments"


class NetConf(NamedTuple):
    """A validated network configuration.

    The mappings are the decoded input; nothing in the core mutates them.
    """

    cni_version: str
    version_given: bool
    name: str
    type: str
    subnet_file: str
    data_dir: str
    delegate: JsonObject
    ipam: JsonObject
    runtime_config: JsonObject | None
    prev_result: JsonObject | None
    # Only for GC: the (container ID, ifname) pairs the runtime still uses.
    valid_attachments: frozenset[tuple[str, str]]


class _Invalid(Exception):
    def __init__(self, error: CniError) -> None:
        super().__init__(error.msg)
        self.error = error


def _invalid(msg: str) -> _Invalid:
    return _Invalid(CniError(Code.INVALID_NETWORK_CONFIG, msg))


def version_of(conf: JsonObject) -> Result[str, CniError]:
    """The configuration's cniVersion: error 1 when we do not speak it."""
    if "cniVersion" not in conf:
        return Success(IMPLICIT_VERSION)
    version = conf["cniVersion"]
    if not isinstance(version, str):
        return Failure(
            CniError(
                Code.INVALID_NETWORK_CONFIG,
                f"cniVersion must be a string, not {type_name(version)}",
            )
        )
    if version not in SUPPORTED_VERSIONS:
        return Failure(
            CniError(
                Code.INCOMPATIBLE_VERSION,
                f"cniVersion {version!r} is not supported",
                "supported versions: " + ", ".join(SUPPORTED_VERSIONS),
            )
        )
    return Success(version)


def parse_netconf(data: bytes, command: str) -> Result[NetConf, CniError]:
    """Decode and validate the configuration a runtime sent for ``command``."""
    return decode_object(data, "network configuration").bind(
        lambda conf: version_of(conf).bind(lambda version: _validate(conf, version, command))
    )


def _validate(conf: JsonObject, version: str, command: str) -> Result[NetConf, CniError]:
    if not command_allowed(command, version):
        return Failure(
            CniError(
                Code.INCOMPATIBLE_VERSION,
                f"{command} needs cniVersion {COMMAND_SINCE[command]} or later;"
                f" this configuration is {version}",
                "supported versions: " + ", ".join(SUPPORTED_VERSIONS),
            )
        )
    try:
        name = _identifier(conf, "name")
        own_type = _plugin_type(conf.get("type", _ABSENT), "type", required=True)
        delegate = _delegate(conf.get("delegate"), own_type)
        ipam = _ipam(conf.get("ipam"))
        return Success(
            NetConf(
                cni_version=version,
                version_given="cniVersion" in conf,
                name=name,
                type=own_type,
                subnet_file=_abs_path(conf, "subnetFile", DEFAULT_SUBNET_FILE),
                data_dir=_abs_path(conf, "dataDir", DEFAULT_DATA_DIR),
                delegate=delegate,
                ipam=ipam,
                runtime_config=_optional_object(conf, "runtimeConfig"),
                prev_result=_optional_object(conf, "prevResult"),
                valid_attachments=_valid_attachments(conf, command),
            )
        )
    except _Invalid as bad:
        return Failure(bad.error)


def _identifier(conf: JsonObject, key: str) -> str:
    if key not in conf:
        raise _invalid(f"{key} is required")
    value = conf[key]
    if not isinstance(value, str):
        raise _invalid(f"{key} must be a string, not {type_name(value)}")
    if not is_valid_id(value):
        raise _invalid(
            f"{key} {value!r} must start with a letter or digit and contain only"
            " letters, digits, '_', '.' and '-'"
        )
    return value


_ABSENT: Final = object()


def _plugin_type(value: object, where: str, *, required: bool) -> str:
    if value is _ABSENT:
        if required:
            raise _invalid(f"{where} is required")
        return ""
    if not isinstance(value, str):
        raise _invalid(f"{where} must be a string, not {type_name(value)}")
    if not is_valid_plugin_type(value):
        raise _invalid(f"{where} {value!r} must be a plugin name without a path separator")
    return value


def _abs_path(conf: JsonObject, key: str, default: str) -> str:
    value = conf.get(key, default)
    if not isinstance(value, str):
        raise _invalid(f"{key} must be a string, not {type_name(value)}")
    if not value.startswith("/") or "\0" in value:
        raise _invalid(f"{key} {value!r} must be an absolute path")
    return value


def _optional_object(conf: JsonObject, key: str) -> JsonObject | None:
    value = conf.get(key)
    if value is not None and not isinstance(value, dict):
        raise _invalid(f"{key} must be an object, not {type_name(value)}")
    return value


def _delegate(value: object, own_type: str) -> JsonObject:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(f"delegate must be an object, not {type_name(value)}")
    for key in ("name", "ipam"):
        if key in value:
            raise _invalid(
                f"delegate must not contain {key!r}: the plugin sets the delegate's"
                " name to the network's and builds its ipam from subnet.env"
            )
    delegate_type = _plugin_type(value.get("type", _ABSENT), "delegate.type", required=False)
    if delegate_type == own_type:
        raise _invalid(f"delegate.type {delegate_type!r} would execute this plugin again")
    return value


def _ipam(value: object) -> JsonObject:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(f"ipam must be an object, not {type_name(value)}")
    _plugin_type(value.get("type", _ABSENT), "ipam.type", required=False)
    routes = value.get("routes", [])
    if not isinstance(routes, list):
        raise _invalid(f"ipam.routes must be an array, not {type_name(routes)}")
    for index, route in enumerate(routes):
        _route(route, f"ipam.routes[{index}]")
    return value


def _route(route: Any, where: str) -> None:
    if not isinstance(route, dict):
        raise _invalid(f"{where} must be an object, not {type_name(route)}")
    dst = route.get("dst")
    if not isinstance(dst, str) or not _is_cidr(dst):
        raise _invalid(f"{where}.dst must be a CIDR such as 10.244.0.0/16, got {dst!r}")
    gw = route.get("gw")
    if gw is not None and not (isinstance(gw, str) and _is_ip(gw)):
        raise _invalid(f"{where}.gw must be an IP address, got {gw!r}")


def _is_cidr(text: str) -> bool:
    # ipaddress is imported on use: only configurations with ipam.routes need it here.
    from ipaddress import ip_network

    try:
        ip_network(text, strict=False)
    except ValueError:
        return False
    return "/" in text


def _is_ip(text: str) -> bool:
    from ipaddress import ip_address

    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def _valid_attachments(conf: JsonObject, command: str) -> frozenset[tuple[str, str]]:
    if command != "GC":
        return frozenset()
    if VALID_ATTACHMENTS_KEY not in conf:
        # Without the list every record would look stale: refuse rather than guess.
        raise _invalid(f"GC needs {VALID_ATTACHMENTS_KEY!r} in the configuration")
    items = conf[VALID_ATTACHMENTS_KEY]
    if not isinstance(items, list):
        raise _invalid(f"{VALID_ATTACHMENTS_KEY} must be an array, not {type_name(items)}")
    pairs: set[tuple[str, str]] = set()
    for index, item in enumerate(items):
        where = f"{VALID_ATTACHMENTS_KEY}[{index}]"
        if not isinstance(item, dict):
            raise _invalid(f"{where} must be an object, not {type_name(item)}")
        cid, ifname = item.get("containerID"), item.get("ifname")
        if not isinstance(cid, str) or not is_valid_id(cid):
            raise _invalid(f"{where}.containerID must be a valid container ID, got {cid!r}")
        if not isinstance(ifname, str) or ifname_problem(ifname) is not None:
            raise _invalid(f"{where}.ifname must be a valid interface name, got {ifname!r}")
        pairs.add((cid, ifname))
    return frozenset(pairs)
