import socket
from pathlib import Path

import psycopg
import pytest

from millpond import settings as settings_mod
from millpond.errors import ServiceError
from millpond.services import KafkaBroker, MongoReplicaSet, PostgresCluster, local_services, port_in_use
from tests.support.ports import free_port


def test_mongo_is_a_writable_replica_set_primary(mongo: MongoReplicaSet):
    with mongo.client() as client:
        hello = client.admin.command("hello")
        assert hello["isWritablePrimary"] is True
        assert hello["setName"] == "rs0"


def test_postgres_answers_queries(postgres: PostgresCluster):
    with psycopg.connect(postgres.uri) as conn:
        assert conn.execute("select current_setting('server_version_num')::int / 10000").fetchone()[0] == 15


def test_start_is_idempotent_and_stop_reports_state(tmp_path: Path):
    broker = KafkaBroker(tmp_path, free_port())
    broker.start()
    pid = broker.pid()
    assert broker.start().pid() == pid  # already running: same process
    assert port_in_use(broker.port)
    assert broker.stop() is True
    assert broker.stop() is False
    assert not broker.is_running()


def test_taken_port_gives_clear_error(tmp_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ServiceError, match=f"port {port} for kafka is already taken"):
            KafkaBroker(tmp_path, port).start()


def test_missing_binary_says_how_to_install(tmp_path: Path):
    with pytest.raises(ServiceError, match="mongod binary not found") as err:
        MongoReplicaSet(tmp_path, free_port(), tmp_path / "no-mongod").start()
    assert "unset MILLPOND_MONGOD_BIN" in str(err.value)


def test_the_binaries_come_from_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MILLPOND_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MILLPOND_MONGOD_BIN", str(tmp_path / "my-mongod"))
    monkeypatch.setenv("MILLPOND_TANSU_BIN", str(tmp_path / "my-tansu"))
    mongo, kafka = local_services(settings_mod.load())
    assert isinstance(mongo, MongoReplicaSet) and mongo.binary == tmp_path / "my-mongod"
    assert isinstance(kafka, KafkaBroker) and kafka.binary == tmp_path / "my-tansu"
    assert mongo.root == tmp_path / "mongodb"


def test_failed_start_reports_log_tail(tmp_path: Path):
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'broker exploded' >&2\nexit 3\n")
    fake.chmod(0o755)
    broker = KafkaBroker(tmp_path, free_port(), fake)
    broker.start_timeout_s = 1.5
    with pytest.raises(ServiceError, match="broker exploded"):
        broker.start()
