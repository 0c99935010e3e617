"""What a run keeps in the warehouse: credit, failures, run records, IHC parameters and a scheduled run's work tables.

Why a layer of its own: these writes are the rules every runner shares (what a run replaces, which report
dates it touches, how it is recorded), so the CLI and the scheduler cannot decide them differently.
"""
