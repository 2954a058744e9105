"""The pure core of the flannel CNI plugin.

Nothing in this package performs I/O, reads the environment or the clock, or
exits: every input arrives as an argument (environment mapping, stdin bytes,
subnet.env bytes, stored record bytes) and every answer is a ``returns``
``Result`` whose failure side is a :class:`core.errors.CniError`. Functions here
return ``Failure`` for bad input; they never raise for it.
"""
