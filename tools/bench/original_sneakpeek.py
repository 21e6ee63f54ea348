"""The original Sneakpeek 0.1.7 (PyPI sneakpeek-py), in memory, with a do-nothing handler,
for scripts/bench.sh.

    python original_sneakpeek.py API_PORT METRICS_PORT
"""
import logging
import sys

from sneakpeek.lib.storage.in_memory_storage import (
    InMemoryLeaseStorage,
    InMemoryScraperJobsStorage,
    InMemoryScrapersStorage,
)
from sneakpeek.logging import configure_logging
from sneakpeek.scraper_context import ScraperContext
from sneakpeek.scraper_handler import ScraperHandler
from sneakpeek.server import SneakpeekServer


class NoopHandler(ScraperHandler):
    @property
    def name(self) -> str:
        return "noop"

    async def run(self, context: ScraperContext) -> str:
        return ""


api_port, metrics_port = int(sys.argv[1]), int(sys.argv[2])
server = SneakpeekServer.create(
    handlers=[NoopHandler()],
    # Writable, like ours (the original's in-memory default is read-only).
    scrapers_storage=InMemoryScrapersStorage([], is_read_only=False),
    jobs_storage=InMemoryScraperJobsStorage(),
    lease_storage=InMemoryLeaseStorage(),
    api_port=api_port,
    metrics_port=metrics_port,
)

if __name__ == "__main__":
    # Warnings only, as ours runs with --log warn: per-request and per-job lines would be
    # measured too.
    configure_logging(logging.WARNING)
    server.serve()
