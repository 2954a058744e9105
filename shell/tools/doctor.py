"""``flannel-cni doctor``: why a pod on this node would not get its network.

It looks where ADD looks (the runtime's configuration, subnet.env, the CNI
path, dataDir) and at what ADD left behind (records whose namespace is gone,
records of a subnet the node no longer has), and says per check what is
wrong and what to do. The exit status says whether anything is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

from core.findings import (
    Finding,
    conf_findings,
    data_dir_findings,
    plugin_finding,
    report,
    subnet_finding,
)
from core.targets import data_dirs, plugin_needs, subnet_files, targets
from shell.tools.confdir import scan
from shell.tools.gather import cni_path, data_dir_facts, plugin_facts, subnet_facts


@dataclass(frozen=True, slots=True)
class Options:
    conf_dir: str
    cni_path: str | None
    subnet_file: str | None
    data_dir: str | None
    as_json: bool


def findings(options: Options, env: Mapping[str, str]) -> list[Finding]:
    """Every check, in the order an operator reads them: conf, lease, plugins, state."""
    found, networks = conf_findings(options.conf_dir, scan(options.conf_dir))
    where = targets(networks, options.subnet_file, options.data_dir)
    subnets = {path: subnet_facts(path) for path in subnet_files(where)}
    found.extend(subnet_finding(facts) for facts in subnets.values())
    path = cni_path(options.cni_path, env)
    for plugin_type, needs in plugin_needs(networks).items():
        found.append(plugin_finding(plugin_facts(plugin_type, needs, path, env)))
    leases = {file: facts.lease for file, facts in subnets.items()}
    for data_dir in data_dirs(where):
        found.extend(data_dir_findings(data_dir_facts(data_dir), where, leases))
    return found


def run(options: Options, env: Mapping[str, str], stdout: IO[str]) -> int:
    """Print the findings; exit 0 when all are fine, 1 when something is wrong."""
    checks = findings(options, env)
    if options.as_json:
        stdout.write(json.dumps(report(checks), indent=2) + "\n")
    else:
        stdout.write("".join(f.line() + "\n" for f in checks))
    return 0 if all(f.ok for f in checks) else 1
