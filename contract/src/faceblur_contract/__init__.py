"""The contract between the faceblur operator and its worker, importable without the worker's
heavy dependencies: the option enums, every default and bound of a processing option, the
worker's argv in both directions, the exit codes and the termination-log records.

Both sides import it, so what the operator renders is what the worker parses by construction,
and a test (tests/contract) pushes every edge of the schema across the seam to prove it.
"""
