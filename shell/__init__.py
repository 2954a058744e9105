"""The imperative shell of the flannel CNI plugin.

It reads the environment, stdin and files, executes delegates, prints and
exits; every decision is made by :mod:`core`.
"""
