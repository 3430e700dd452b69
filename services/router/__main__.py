"""python -m services.router: subscriptions, delivery and hot spots."""

import asyncio

from services.core.config.settings import Settings
from services.core.kafka.topics import provision_or_exit
from services.core.ops.service import serve
from services.router.app import make_app


def main() -> None:
    settings = Settings()
    provision_or_exit(settings, "router")
    app, router = make_app(settings)
    asyncio.run(serve(app, settings.host, settings.router_port, router.run))


if __name__ == "__main__":
    main()
