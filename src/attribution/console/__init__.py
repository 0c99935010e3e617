"""What the ``attribution`` command shows and accepts: its flags, its progress bars and its tables.

Why apart from ``cli``: the command module only wires flags to one use case each (``attribution.app``); how
an answer looks on a terminal is here, once.
"""
