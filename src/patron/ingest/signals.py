"""Signals other apps listen to, so that the import never has to know them.

``batch_committed`` is sent after an import batch has committed (never for a dry run or a
refused batch), with ``batch_id`` and ``kinds``: the set of kinds the batch wrote rows of.
A receiver's failure is logged and never undoes or fails the import (``send_robust``).
"""

from __future__ import annotations

from django.dispatch import Signal

batch_committed = Signal()
