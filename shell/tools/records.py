"""``flannel-cni records``: the attachments the plugin holds state for.

What ``ls`` of dataDir cannot say: which container and interface a record
belongs to, its delegate and subnet, how old it is and which network
namespace it was made for; and why a record that cannot be read is broken.
"""

from __future__ import annotations

import json
from typing import IO

from core.record_summary import summaries, table
from core.targets import data_dirs, targets
from shell.tools.confdir import flannel_networks, scan
from shell.tools.gather import data_dir_facts


def run(
    conf_dir: str, data_dir: str | None, as_json: bool, stdout: IO[str], stderr: IO[str]
) -> int:
    """List every record (exit 0); exit 1 when a dataDir cannot be read."""
    dirs = (
        (data_dir,)
        if data_dir is not None
        else data_dirs(targets(flannel_networks(scan(conf_dir)), None, None))
    )
    facts = [data_dir_facts(path) for path in dirs]
    said = False  # whether stderr already explains an empty listing
    status = 0
    for found in facts:
        if found.error is not None:
            stderr.write(f"flannel-cni records: {found.error}\n")
            said, status = True, 1
        elif found.info is None:
            stderr.write(f"flannel-cni records: dataDir {found.path} does not exist: no records\n")
            said = True
    listed = summaries(facts)
    if as_json:
        stdout.write(json.dumps([s.to_object() for s in listed], indent=2) + "\n")
    elif listed:
        stdout.write("".join(line + "\n" for line in table(listed)))
    elif not said:
        stderr.write(f"flannel-cni records: no records in {', '.join(dirs)}\n")
    return status
