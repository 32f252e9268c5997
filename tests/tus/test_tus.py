"""Resumable uploads against a real node, driven by tuspy, plus the error statuses that
the tus 1.0.0 specification names for bad requests."""
import hashlib
import io
import os
import time

import requests
from tusclient import client

from tus_client import MIB, TUS, Sha256Uploader, auth, checksum, create, offset_of, patch


def test_an_interrupted_upload_resumes_and_keeps_every_byte(start_node):
    node = start_node()
    token = node.new_user()
    data = os.urandom(5 * MIB + 123)
    tus = client.TusClient(node.url + "/files/", headers=auth(token))
    first = Sha256Uploader(file_stream=io.BytesIO(data), client=tus, chunk_size=MIB, metadata={"filename": "holiday.mov", "filetype": "video/quicktime"}, upload_checksum=True)
    first.upload(stop_at=2 * MIB)  # the connection "drops" after two chunks
    assert offset_of(first.url, token) == 2 * MIB

    second = Sha256Uploader(file_stream=io.BytesIO(data), client=tus, url=first.url, chunk_size=MIB, upload_checksum=True)
    assert second.offset == 2 * MIB, "the new client picks up where the first stopped"
    second.upload()

    upload_id = first.url.rstrip("/").rsplit("/", 1)[1]
    info = requests.get(node.url + f"/api/uploads/{upload_id}", headers=auth(token), timeout=10).json()
    assert info["complete"] is True
    assert info["size"] == len(data)
    assert info["name"] == "holiday.mov" and info["mime"] == "video/quicktime"
    assert info["sha256"] == hashlib.sha256(data).hexdigest(), "the node's digest is the file's"
    with open(node.blob(upload_id), "rb") as stored:
        assert stored.read() == data

    # The resumed upload's share link returns the same bytes, whole and by Range.
    link = requests.post(node.url + "/api/shares", headers=auth(token), json={"upload": upload_id}, timeout=10).json()
    whole = requests.get(node.url + link["url"], timeout=30)
    assert whole.status_code == 200 and whole.content == data
    part = requests.get(node.url + link["url"], headers={"Range": f"bytes={2 * MIB - 5}-{2 * MIB + 4}"}, timeout=10)
    assert part.status_code == 206 and part.content == data[2 * MIB - 5 : 2 * MIB + 5], "bytes across the resume point"


def test_creation_with_upload_stores_the_first_bytes(start_node):
    node = start_node()
    token = node.new_user()
    body = b"hello, tus"
    reply = requests.post(
        node.url + "/files/",
        headers={**TUS, **auth(token), "Upload-Length": "20", "Content-Type": "application/offset+octet-stream", "Upload-Checksum": checksum(body)},
        data=body,
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    assert reply.headers["Upload-Offset"] == str(len(body))
    assert "Upload-Expires" in reply.headers
    assert offset_of(node.url + reply.headers["Location"], token) == len(body)




def test_bad_requests_get_the_statuses_tus_names(start_node):
    node = start_node(PEERLINK_MAX_FILE_SIZE=str(10 * MIB))
    token = node.new_user()

    options = requests.options(node.url + "/files/", timeout=10)
    assert options.status_code == 204
    assert set(options.headers["Tus-Extension"].split(",")) == {"creation", "creation-with-upload", "expiration", "checksum", "termination"}
    assert options.headers["Tus-Version"] == "1.0.0"
    assert "sha256" in options.headers["Tus-Checksum-Algorithm"]
    assert options.headers["Tus-Max-Size"] == str(10 * MIB)

    missing = requests.post(node.url + "/files/", headers={**auth(token), "Upload-Length": "5"}, timeout=10)
    assert missing.status_code == 412 and missing.headers["Tus-Version"] == "1.0.0"
    wrong = requests.post(node.url + "/files/", headers={**auth(token), "Tus-Resumable": "0.2.2", "Upload-Length": "5"}, timeout=10)
    assert wrong.status_code == 412
    anonymous = requests.post(node.url + "/files/", headers={**TUS, "Upload-Length": "5"}, timeout=10)
    assert anonymous.status_code == 401
    too_big = requests.post(node.url + "/files/", headers={**TUS, **auth(token), "Upload-Length": str(10 * MIB + 1)}, timeout=10)
    assert too_big.status_code == 413, "refused before any byte is stored"
    assert requests.post(node.url + "/files/", headers={**TUS, **auth(token)}, timeout=10).status_code == 400

    url = create(node, token, 100)
    assert patch(url, token, 5, b"x" * 10).status_code == 409, "a wrong Upload-Offset"
    assert patch(url, token, 0, b"x" * 10, **{"Content-Type": "text/plain"}).status_code == 415
    bad = patch(url, token, 0, b"x" * 10, **{"Upload-Checksum": checksum(b"something else")})
    assert bad.status_code == 460
    assert offset_of(url, token) == 0, "a failed checksum leaves the offset where it was"
    good = patch(url, token, 0, b"y" * 10, **{"Upload-Checksum": checksum(b"y" * 10)})
    assert good.status_code == 204 and good.headers["Upload-Offset"] == "10"
    assert patch(url, token, 10, b"z" * 91).status_code == 400, "past Upload-Length"
    assert offset_of(url, token) == 10
    assert patch(url, token, 10, b"z" * 10, **{"Upload-Checksum": "md5 AAAA"}).status_code == 400

    stranger = node.new_user("stranger")
    assert requests.head(url, headers={**TUS, **auth(stranger)}, timeout=10).status_code == 404, "another user's upload"

    upload_id = url.rsplit("/", 1)[1]
    assert os.path.exists(node.blob(upload_id))
    assert requests.delete(url, headers={**TUS, **auth(token)}, timeout=10).status_code == 204
    assert requests.head(url, headers={**TUS, **auth(token)}, timeout=10).status_code == 404
    assert not os.path.exists(node.blob(upload_id)), "termination removes the bytes"


def test_incomplete_uploads_expire_and_their_bytes_go(start_node):
    node = start_node(PEERLINK_UPLOAD_TTL_SECS="1")
    token = node.new_user()
    url = create(node, token, 100)
    assert patch(url, token, 0, b"q" * 10).status_code == 204
    upload_id = url.rsplit("/", 1)[1]
    deadline = time.monotonic() + 15
    while os.path.exists(node.blob(upload_id)):
        assert time.monotonic() < deadline, "the expired upload's bytes are still there"
        time.sleep(0.1)
    assert requests.head(url, headers={**TUS, **auth(token)}, timeout=10).status_code in (404, 410)


def upload_with_tuspy(node, token, data, name):
    tus = client.TusClient(node.url + "/files/", headers=auth(token))
    uploader = Sha256Uploader(file_stream=io.BytesIO(data), client=tus, chunk_size=MIB, metadata={"filename": name}, upload_checksum=True)
    uploader.upload()
    return uploader.url.rstrip("/").rsplit("/", 1)[1]


def share(node, token, upload_id, **options):
    reply = requests.post(node.url + "/api/shares", headers=auth(token), json={"upload": upload_id, **options}, timeout=10)
    assert reply.status_code == 201, reply.text
    return reply.json()


def test_a_share_link_returns_the_same_bytes_also_by_range(start_node):
    node = start_node()
    token = node.new_user()
    data = os.urandom(3 * MIB + 7)
    name = "Résumé «final».pdf"
    upload_id = upload_with_tuspy(node, token, data, name)
    link = share(node, token, upload_id, ttl_secs=3600, max_downloads=3)
    assert len(link["token"]) >= 22 and link["url"] == "/s/" + link["token"]

    whole = requests.get(node.url + link["url"], timeout=30)
    assert whole.status_code == 200
    assert whole.content == data, "the link returns the uploaded bytes"
    assert whole.headers["ETag"] == '"' + hashlib.sha256(data).hexdigest() + '"'
    disposition = whole.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and "filename*=UTF-8''R%C3%A9sum%C3%A9" in disposition, disposition

    part = requests.get(node.url + link["url"], headers={"Range": "bytes=1000-1999"}, timeout=10)
    assert part.status_code == 206
    assert part.content == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    tail = requests.get(node.url + link["url"], headers={"Range": f"bytes={len(data) - 10}-"}, timeout=10)
    assert tail.status_code == 206 and tail.content == data[-10:]


def test_links_end_when_used_up_revoked_or_expired(start_node):
    node = start_node()
    token = node.new_user()
    upload_id = upload_with_tuspy(node, token, b"small file", "a.txt")

    twice = share(node, token, upload_id, max_downloads=2)
    for _ in range(2):
        assert requests.get(node.url + twice["url"], timeout=10).status_code == 200
    assert requests.get(node.url + twice["url"], timeout=10).status_code == 410, "used up"

    revoked = share(node, token, upload_id)
    stranger = node.new_user("stranger")
    assert requests.delete(node.url + "/api/shares/" + revoked["token"], headers=auth(stranger), timeout=10).status_code == 404
    assert requests.delete(node.url + "/api/shares/" + revoked["token"], headers=auth(token), timeout=10).status_code == 204
    assert requests.get(node.url + revoked["url"], timeout=10).status_code == 410, "revoked"

    brief = share(node, token, upload_id, ttl_secs=1)
    deadline = time.monotonic() + 15
    while requests.get(node.url + brief["url"], timeout=10).status_code == 200:
        assert time.monotonic() < deadline, "the link never expired"
        time.sleep(0.2)
    assert requests.get(node.url + brief["url"], timeout=10).status_code == 410, "expired"

    assert requests.get(node.url + "/s/not-a-real-token", timeout=10).status_code == 404
    incomplete = create(node, token, 100)
    reply = requests.post(node.url + "/api/shares", headers=auth(token), json={"upload": incomplete.rsplit("/", 1)[1]}, timeout=10)
    assert reply.status_code == 409, "an incomplete upload cannot be shared"
    assert requests.post(node.url + "/api/shares", headers=auth(stranger), json={"upload": upload_id}, timeout=10).status_code == 404
