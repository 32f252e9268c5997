"""Starts a real `peerlink` node on a free loopback port for the tus tests."""
import os
import re
import subprocess
import threading
import queue
import uuid

import pytest
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("PEERLINK_BIN") or os.path.join(HERE, "..", "..", "target", "debug", "peerlink")


class Node:
    def __init__(self, data_dir, env):
        settings = {k: v for k, v in os.environ.items() if not k.startswith("PEERLINK_")}
        settings.update(
            PEERLINK_BIND="127.0.0.1:0",
            PEERLINK_DATA_DIR=str(data_dir),
            PEERLINK_ADMIN_TOKEN="tus-test-admin-token-0123",
            RUST_LOG="warn",
        )
        settings.update(env)
        self.data_dir = data_dir
        self.process = subprocess.Popen([BIN, "serve"], env=settings, stdout=subprocess.PIPE, text=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.process.stdout], daemon=True).start()
        while True:
            line = lines.get(timeout=60)
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if match:
                self.url = match.group(1)
                break

    def new_user(self, name="uploader"):
        reply = requests.post(self.url + "/api/sessions", json={"name": name}, timeout=10)
        reply.raise_for_status()
        return reply.json()["token"]

    def blob(self, upload_id):
        return os.path.join(self.data_dir, "blobs", upload_id.replace("-", ""))

    def stop(self):
        self.process.kill()
        self.process.wait()


def fresh_postgres_database():
    """A new database on the throwaway PostgreSQL that tests/run.sh starts."""
    admin = os.environ.get("PEERLINK_TEST_POSTGRES_URL")
    if not admin:
        pytest.fail("PEERLINK_TEST_POSTGRES_URL is not set: run the tests with `bash tests/run.sh`")
    name = "pl_tus_" + uuid.uuid4().hex
    subprocess.run(["psql", admin, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    return admin.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgres"])
def start_node(request, tmp_path):
    nodes = []

    def start(**env):
        if request.param == "postgres":
            env.setdefault("PEERLINK_DATABASE_URL", fresh_postgres_database())
        node = Node(tmp_path / f"node{len(nodes)}", env)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()
