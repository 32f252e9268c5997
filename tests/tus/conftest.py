"""Starts a real `peerlink` node on a free loopback port for the tus tests, or a cluster
of them on one PostgreSQL database and a throwaway Redis."""
import os
import re
import socket
import subprocess
import threading
import time
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
        self.blob_dir = settings.get("PEERLINK_BLOB_DIR") or os.path.join(data_dir, "blobs")
        self.process = subprocess.Popen([BIN, "serve"], env=settings, stdout=subprocess.PIPE, text=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.process.stdout], daemon=True).start()
        try:
            while True:
                line = lines.get(timeout=60)
                match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
                if match:
                    self.url = match.group(1)
                    break
        except BaseException:
            self.stop()  # a node that did not start is not left running
            raise

    def new_user(self, name="uploader"):
        reply = requests.post(self.url + "/api/sessions", json={"name": name}, timeout=10)
        reply.raise_for_status()
        return reply.json()["token"]

    def blob(self, upload_id):
        return os.path.join(self.blob_dir, upload_id.replace("-", ""))

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


CLUSTER_SECRET = "tus-test-cluster-secret-0123456789abcdef"
CLUSTER_WAIT = 30  # seconds


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Redis:
    """A throwaway redis-server on a free loopback port, without persistence."""

    def __init__(self, directory):
        directory.mkdir(parents=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/"
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(directory)]
        self.process = subprocess.Popen(["/usr/bin/redis-server", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + CLUSTER_WAIT
        while not self.pings():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server on port {self.port} did not answer PING")
            time.sleep(0.02)

    def pings(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                answer = b""
                while len(answer) < 7:
                    piece = sock.recv(7 - len(answer))
                    if not piece:
                        break
                    answer += piece
                return answer == b"+PONG\r\n"
        except OSError:
            return False

    def stop(self):
        self.process.kill()
        self.process.wait()


def wait_for_cluster(nodes):
    """Until every node lists all the nodes as live."""
    for node in nodes:
        deadline = time.monotonic() + CLUSTER_WAIT
        while True:
            listed = None
            try:
                reply = requests.get(node.url + "/api/cluster/nodes", timeout=5)
                if reply.status_code == 200:
                    listed = len(reply.json()["nodes"])
            except (requests.RequestException, ValueError, KeyError, TypeError):
                pass
            if listed == len(nodes):
                break
            assert time.monotonic() < deadline, f"the node at {node.url} lists {listed} live nodes, not {len(nodes)}"
            time.sleep(0.05)


@pytest.fixture
def cluster(tmp_path):
    """`start(n)`: n nodes sharing one fresh PostgreSQL database, a throwaway Redis and one
    blob directory, each with its own data directory. All are killed afterwards."""
    running = []

    def start(n):
        home = tmp_path / f"cluster{len(running)}"
        redis = Redis(home / "redis")
        running.append(redis)
        blob_dir = home / "blobs"
        blob_dir.mkdir()
        database = fresh_postgres_database()
        nodes = []
        for i in range(1, n + 1):
            env = {
                "PEERLINK_DATABASE_URL": database,
                "PEERLINK_REDIS_URL": redis.url,
                "PEERLINK_NODE_ID": f"node-{i}",
                "PEERLINK_CLUSTER_SECRET": CLUSTER_SECRET,
                "PEERLINK_BLOB_DIR": str(blob_dir),
            }
            node = Node(home / f"node{i}", env)
            running.append(node)
            nodes.append(node)
        wait_for_cluster(nodes)
        return nodes

    yield start
    for process in reversed(running):
        process.stop()
