"""What ``s115hub up`` publishes in production mode: the county file, the protocols as the
officers signed them and the officers' public keys, all from the config directory. Nothing is
generated or signed here (demo keys and signatures are ``--demo`` only); the master key and the
audit key are created once, in a state directory that is never deleted."""

from __future__ import annotations

import os
from pathlib import Path

from demo.bootstrap import Bootstrap
from services.core.audit.key import ensure_audit_key
from services.core.config.state_dir import prepare_production_state
from services.core.crypto.keys import MasterKey


def production_boot(state_dir: Path, config_dir: Path) -> Bootstrap:
    from services.cli.protocol_cmds import config_messages

    prepare_production_state(state_dir)
    if not os.environ.get("S115HUB_MASTER_KEY") and not (state_dir / "master.key").exists():
        MasterKey.generate_file(state_dir / "master.key")
    ensure_audit_key(state_dir / "audit-key.pem")
    messages, county = config_messages(config_dir, config_dir / "protocols",
                                       config_dir / "officers")
    return Bootstrap(county, messages)
