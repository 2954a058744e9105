"""``flannel-cni``: the operator's tools (render, doctor, records).

A separate console script so that the ``flannel`` plugin, which runtimes
execute for every pod, never imports this package, argparse or anything else
only an operator needs. Judgements live in :mod:`core`; this package gathers
facts from the node and prints.
"""
