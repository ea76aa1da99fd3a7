"""Patron: the customer quality platform."""

import os

# Arrow allocates with jemalloc in every Patron process and in the children it starts,
# not with pyarrow's default mimalloc: `patron score` at 1M customers took 63.0-73.8 s
# with mimalloc, 57.0-58.6 s with jemalloc (bench/pipeline.py, one machine, one session;
# the reasons' large string columns fault fresh pages in on every allocation with
# mimalloc). Read once, before pyarrow's first allocation; a value set outside wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
