"""``python -m metapool``: the ``metapool`` command (see :mod:`metapool.cli`)."""

from metapool.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
