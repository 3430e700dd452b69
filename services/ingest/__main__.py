"""python -m services.ingest: the ingest HTTP API."""

import uvicorn

from services.core.settings import Settings
from services.ingest.app import make_app


def main() -> None:
    settings = Settings()
    uvicorn.run(make_app(settings), host=settings.host, port=settings.ingest_port,
                log_level="warning")


if __name__ == "__main__":
    main()
