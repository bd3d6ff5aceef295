"""The `release` process: create or update Meilisearch indexes and their settings, then exit.

Run: `python -m feeds.release` (Heroku runs it before each new release goes live).
"""

from __future__ import annotations

import sys

from core.clients import make_meili
from core.logs import configure_logging
from core.settings import load_settings_or_exit
from feeds.index import ensure_indexes


def main() -> int:
    settings = load_settings_or_exit()
    configure_logging(settings.log_level)
    for step in ensure_indexes(make_meili(settings)):
        sys.stdout.write(f"release: {step}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
