"""python -m services.depersonalise: the protocol engine stage."""

import asyncio

from services.core.config.settings import Settings
from services.core.kafka.topics import provision_or_exit
from services.core.ops.service import serve
from services.depersonalise.app import make_app


def main() -> None:
    settings = Settings()
    provision_or_exit(settings, "depersonalise")
    app, svc = make_app(settings)
    asyncio.run(serve(app, settings.host, settings.depersonalise_port, svc.run))


if __name__ == "__main__":
    main()
