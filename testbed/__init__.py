"""What tests and the benchmark both run on: fakes, keys, the namespace sandboxes.

Why a package of its own: bench/ measures regauth on the same fake Secret Manager and
the same cloud-init sandbox the tests use; importing them from tests/ made a tool
depend on the test suite (and on pytest). Nothing here imports pytest or tests/;
tests/support adds the pytest glue (fixtures, skip-locally-fail-in-CI) on top and
keeps the old import paths working. Not shipped in the wheel.
"""
