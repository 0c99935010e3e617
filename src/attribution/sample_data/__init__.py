"""Sample data: challenge-like input databases for demos, tests and benchmarks (``generate``), and the
generator's options (``options``, light: the CLI's help shows them without loading the generator).

Why a package of its own, above ``warehouse``: it writes input tables through the warehouse's engines and
table definitions, but no run reads it; it is a tool beside the pipeline, not part of the warehouse.
"""
