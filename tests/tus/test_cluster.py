"""Resumable uploads across the nodes of a cluster: they share one database and one blob
directory, so any node continues, tells the offset of, or shares an upload begun on
another; and two nodes never write one upload at once."""
import hashlib
import io
import os
import socket
import struct
import threading
import time
from urllib.parse import urlsplit

import requests
from tusclient import client

from tus_client import MIB, Sha256Uploader, auth, create, offset_of, patch


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def described(node, token, upload_id):
    reply = requests.get(node.url + f"/api/uploads/{upload_id}", headers=auth(token), timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def share(node, token, upload_id):
    reply = requests.post(node.url + "/api/shares", headers=auth(token), json={"upload": upload_id}, timeout=10)
    assert reply.status_code == 201, reply.text
    return reply.json()


def test_an_upload_begun_on_one_node_is_finished_on_another_and_shared_from_a_third(cluster):
    first_node, second_node, third_node = cluster(3)
    token = first_node.new_user()
    data = os.urandom(6 * MIB + 321)

    tus = client.TusClient(first_node.url + "/files/", headers=auth(token))
    first = Sha256Uploader(file_stream=io.BytesIO(data), client=tus, chunk_size=MIB, metadata={"filename": "film.mkv"}, upload_checksum=True)
    first.upload(stop_at=2 * MIB)  # the first node "goes away" after two chunks
    path = urlsplit(first.url).path
    assert path.startswith("/files/"), first.url
    upload_id = path.rsplit("/", 1)[1]

    on_second = second_node.url + path
    assert offset_of(on_second, token) == 2 * MIB, "the second node sees the bytes the first stored"
    tus = client.TusClient(second_node.url + "/files/", headers=auth(token))
    second = Sha256Uploader(file_stream=io.BytesIO(data), client=tus, url=on_second, chunk_size=MIB, upload_checksum=True)
    assert second.offset == 2 * MIB, "the client resumes on the second node where the first stopped"
    second.upload()
    assert offset_of(on_second, token) == len(data)

    link = share(second_node, token, upload_id)
    download = requests.get(third_node.url + "/s/" + link["token"], timeout=30)
    assert download.status_code == 200, download.text
    assert sha256(download.content) == sha256(data), "the third node serves the bytes both nodes stored"

    info = described(third_node, token, upload_id)
    assert info["complete"] is True, info
    assert info["sha256"] == sha256(data), "the digest kept across two nodes is the file's"


def two_nodes_and_an_upload(cluster, length):
    """Two nodes, a user, and a new upload of `length` bytes made on the first; returns
    (first node, second node, token, the upload's path, the same on every node)."""
    first_node, second_node = cluster(2)
    token = first_node.new_user()
    return first_node, second_node, token, urlsplit(create(first_node, token, length)).path


def test_two_patches_of_one_upload_on_two_nodes_cannot_both_write(cluster):
    length = 4 * MIB
    first_node, second_node, token, path = two_nodes_and_an_upload(cluster, length)
    ours = os.urandom(length)
    theirs = os.urandom(256 * 1024)

    piece = 64 * 1024
    underway = threading.Event()
    all_sent = threading.Event()

    def slow_body():
        """The body in 64 KiB pieces, ~1.3 s in all; `underway` once the node has had
        ~0.15 s to take the upload (it does before it reads the body)."""
        for count, at in enumerate(range(0, length, piece), start=1):
            yield ours[at : at + piece]
            if count == 8:
                underway.set()
            time.sleep(0.02)
        all_sent.set()

    outcome = {}

    def slow_patch():
        try:
            outcome["reply"] = patch(first_node.url + path, token, 0, slow_body())
        except Exception as e:  # reported by the assertions below
            outcome["error"] = e

    writer = threading.Thread(target=slow_patch, daemon=True)
    writer.start()
    try:
        assert underway.wait(timeout=10), "the first PATCH did not start sending its body"
        rival = patch(second_node.url + path, token, 0, theirs)
        assert not all_sent.is_set(), "the first PATCH ended before the second was answered: the test proves nothing"
        assert rival.status_code == 409, f"a PATCH on the second node while the first node writes: {rival.status_code} {rival.text}"
    finally:
        writer.join(timeout=30)
    assert not writer.is_alive(), "the first PATCH did not end"
    assert "error" not in outcome, f"the first PATCH failed: {outcome.get('error')!r}"
    reply = outcome["reply"]
    assert reply.status_code == 204, f"the first PATCH: {reply.status_code} {reply.text}"
    assert reply.headers["Upload-Offset"] == str(length)

    for node in (first_node, second_node):
        assert offset_of(node.url + path, token) == length, f"HEAD on {node.url}"
    upload_id = path.rsplit("/", 1)[1]
    info = described(second_node, token, upload_id)
    assert info["complete"] is True and info["sha256"] == sha256(ours), "the upload holds the first PATCH's bytes"
    link = share(first_node, token, upload_id)
    download = requests.get(second_node.url + link["url"], timeout=30)
    assert download.status_code == 200 and download.content == ours, "the stored bytes are the first PATCH's"


def test_head_right_after_a_dropped_patch_on_another_node_tells_the_stored_offset(cluster):
    length = 4 * MIB
    first_node, second_node, token, path = two_nodes_and_an_upload(cluster, length)
    data = os.urandom(length)

    # A PATCH that announces the whole body, sends a quarter, and is cut off (RST).
    request = (
        f"PATCH {path} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{urlsplit(first_node.url).port}\r\n"
        "Tus-Resumable: 1.0.0\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Upload-Offset: 0\r\n"
        "Content-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {length}\r\n"
        "\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", urlsplit(first_node.url).port), timeout=10)
    try:
        sock.sendall(request + data[:MIB])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()

    stored = offset_of(second_node.url + path, token)
    assert stored <= MIB, f"HEAD says {stored} bytes, but only {MIB} were sent"
    rest = patch(second_node.url + path, token, stored, data[stored:])
    assert rest.status_code == 204, f"the rest from the offset HEAD told ({stored}): {rest.status_code} {rest.text}"
    assert rest.headers["Upload-Offset"] == str(length)

    info = described(second_node, token, path.rsplit("/", 1)[1])
    assert info["complete"] is True and info["sha256"] == sha256(data), "the upload is the whole file, every byte in place"
