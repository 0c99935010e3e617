"""The use cases the entry points call: one function per command of the CLI, and the scheduler's settings.

Why a layer of its own: the CLI and the DAG only wire (flags, params, connections in; one call; the answer
out); what a command does, and how a scheduler's connections become settings, is tested here without them.
"""
