"""``makemessages`` that also collects the reason templates marked ``N_(...)``.

The analytics library (``patron.intelligence``) never imports Django, so it marks the sentence
templates of its reasons with its own no-op ``N_`` (``patron.intelligence.explain``); the pages
translate them at render time. xgettext only knows Django's markers, so without this keyword
``makemessages`` would mark those translations obsolete.
"""

from __future__ import annotations

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=N_"]
