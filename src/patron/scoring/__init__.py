"""The Django side of customer intelligence: feeds ``patron.intelligence`` (the pure library)
from the OLTP database and the event lake, and writes its results back (DESIGN.md §4)."""
