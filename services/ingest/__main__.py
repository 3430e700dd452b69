"""python -m services.ingest: the ingest HTTP API."""

import asyncio

from services.core.config.settings import Settings
from services.core.kafka.topics import provision_or_exit
from services.core.ops.service import serve
from services.ingest.app import make_app


def main() -> None:
    settings = Settings()
    provision_or_exit(settings, "ingest")
    # ops.serve rather than uvicorn.run: the same SIGTERM/SIGINT/SIGHUP handling as the others.
    asyncio.run(serve(make_app(settings), settings.host, settings.ingest_port))


if __name__ == "__main__":
    main()
