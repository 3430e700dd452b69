"""`s115hub up` refuses a port another hub listens on, and not one the hub just stopped left in
TIME_WAIT (a restart straight after SIGTERM, as systemd does)."""

from __future__ import annotations

import socket

import pytest

from services.cli.hub_up import check_ports_free
from services.core.errors import HubError


def _listener() -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def test_given_a_listener_on_the_port_then_up_says_which_port_is_in_use() -> None:
    with _listener() as busy:
        port = busy.getsockname()[1]
        with pytest.raises(HubError, match=f"port {port} \\(ingest, S115HUB_INGEST_PORT\\)"):
            check_ports_free("127.0.0.1", {"ingest": port})


def test_given_the_port_only_in_time_wait_then_up_may_use_it() -> None:
    server = _listener()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the server side closes first: its end of the connection waits in TIME_WAIT
    client.close()
    server.close()
    check_ports_free("127.0.0.1", {"ingest": port})  # raised HubError before SO_REUSEADDR
