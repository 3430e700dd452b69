"""Reading a group's delivery topic from the command line."""

from __future__ import annotations

import json
import sys

from services.core.config.settings import Settings
from services.core.kafka.clients import make_consumer
from services.core.kafka.topics import topics_for


async def print_group(settings: Settings, group: str, *, from_beginning: bool, limit: int) -> int:
    topic = topics_for(settings).deliver(group)
    consumer = make_consumer(settings, topic, group_id=None,
                             auto_offset_reset="earliest" if from_beginning else "latest")
    await consumer.start()
    # stderr, so the records on stdout stay one JSON object per line.
    print(f"following {topic}; Ctrl-C stops", file=sys.stderr, flush=True)
    n = 0
    try:
        while not limit or n < limit:
            batch = await consumer.getmany(timeout_ms=1000)
            for msgs in batch.values():
                for msg in msgs:
                    sys.stdout.write(json.dumps(json.loads(msg.value)) + "\n")
                    n += 1
            sys.stdout.flush()
    finally:
        await consumer.stop()
    return n
