"""A secured Apache Kafka for the end-to-end security tests: a TLS certificate authority made at
test time, one KRaft node with SASL_SSL (SCRAM-SHA-512) for clients and brokers, mutual TLS on the
controller listener, the StandardAuthorizer with ``allow.everyone.if.no.acl.found=false``.

The broker settings here are the ones deploy/security/README.md documents (tests/deploy checks
that they agree): what is documented is what ran.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr

from services.core.config.settings import Settings
from services.core.kafka.local import Listener, LocalKafka

BROKER_CN = "s115hub-test-broker"
MECHANISM: Literal["SCRAM-SHA-512"] = "SCRAM-SHA-512"

#: The broker settings the secured deployment needs, beyond listeners and ports (the TLS
#: material and the admin's password are filled in per run). deploy/security/README.md shows
#: these same keys and values; tests/deploy/test_deploy_files.py compares them.
SECURED_BROKER_SETTINGS = {
    "sasl.enabled.mechanisms": MECHANISM,
    "sasl.mechanism.inter.broker.protocol": MECHANISM,
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "allow.everyone.if.no.acl.found": "false",
    "auto.create.topics.enable": "false",
    "ssl.keystore.type": "PEM",
    "ssl.truststore.type": "PEM",
    "listener.name.controller.ssl.client.auth": "required",
}
#: Client listener and controller listener security protocols.
LISTENER_PROTOCOLS = {"SASL_SSL": "SASL_SSL", "CONTROLLER": "SSL"}


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _pem_cert(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class Tls:
    ca_pem: str
    broker_chain_pem: str
    broker_key_pem: str


def make_tls() -> Tls:
    """A CA valid for a day, and a broker certificate for 127.0.0.1/localhost it signed."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("s115hub test CA"))
          .issuer_name(_name("s115hub test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(BROKER_CN)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return Tls(_pem_cert(ca), _pem_cert(cert) + _pem_cert(ca), _pem_key(key))


def _inline(pem: str) -> str:
    """A PEM block as one server.properties value (java.util.Properties reads ``\\n``)."""
    return pem.strip().replace("\n", "\\n")


def secured_kafka(directory: Path, tls: Tls, admin_password: str) -> LocalKafka:
    jaas = ("org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="admin" password="{admin_password}";')
    props = {
        **SECURED_BROKER_SETTINGS,
        "listener.security.protocol.map": ",".join(f"{k}:{v}"
                                                   for k, v in LISTENER_PROTOCOLS.items()),
        "super.users": f"User:admin;User:CN={BROKER_CN}",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
        # PEM inline: Kafka 4 reads keys and certificates without a Java keystore (no keytool).
        "ssl.keystore.certificate.chain": _inline(tls.broker_chain_pem),
        "ssl.keystore.key": _inline(tls.broker_key_pem),
        "ssl.truststore.certificates": _inline(tls.ca_pem),
    }
    return LocalKafka(directory, nodes=1, listeners=(Listener("SASL_SSL", "SASL_SSL"),),
                      properties=props, ready_listener="SASL_SSL",
                      format_args=("--add-scram",
                                   f"{MECHANISM}=[name=admin,password={admin_password}]"))


@dataclass
class Principals:
    """SCRAM users and their passwords for one run (never written outside the test's tmp dir)."""

    passwords: dict[str, str] = field(default_factory=dict)

    def add(self, user: str) -> str:
        return self.passwords.setdefault(user, secrets.token_hex(16))


@dataclass
class SecuredCluster:
    kafka: LocalKafka
    ca_file: Path
    principals: Principals
    base: dict[str, str]  # S115HUB_* settings every process of the hub shares

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap("SASL_SSL")

    def env(self, user: str, **extra: str) -> dict[str, str]:
        """A child environment authenticated as ``user``."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("S115HUB_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
        env.update(self.base)
        env.update({
            "S115HUB_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "S115HUB_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "S115HUB_KAFKA_SASL_MECHANISM": MECHANISM,
            "S115HUB_KAFKA_SASL_USERNAME": user,
            "S115HUB_KAFKA_SASL_PASSWORD": self.principals.passwords[user],
            "S115HUB_KAFKA_SSL_CAFILE": str(self.ca_file),
        })
        env.update(extra)
        return env

    def settings(self, user: str, password: str | None = None, **kw: Any) -> Settings:
        return Settings(kafka_bootstrap_servers=self.bootstrap,
                        kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism=MECHANISM,
                        kafka_sasl_username=user,
                        kafka_sasl_password=SecretStr(password or self.principals.passwords[user]),
                        kafka_ssl_cafile=self.ca_file, **kw)

    def cli(self, user: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """Run ``s115hub ARGS`` as ``user``, in process (a child interpreter per command cost
        ~4 s each on a busy 2-core machine); the settings come from the environment exactly as
        for the real command."""
        from typer.testing import CliRunner

        from services.cli.main import app

        env: dict[str, str | None] = {k: None for k in os.environ
                                      if k.startswith("S115HUB_") or k == "KAFKA_BOOTSTRAP_SERVERS"}
        env.update({k: v for k, v in self.env(user, **extra).items()
                    if k.startswith("S115HUB_")})
        result = CliRunner().invoke(app, list(args), env=env)
        err = result.stderr
        if result.exception and not isinstance(result.exception, SystemExit):
            err += f"{type(result.exception).__name__}: {result.exception}"
        return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, err)
