"""What the tus tests share: a tus client with SHA-256 checksums and the requests they make."""
import base64
import hashlib

import requests
from tusclient.uploader import Uploader

MIB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


class Sha256Uploader(Uploader):
    """tuspy's uploader with sha256 checksums (it sends sha1 by default)."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def checksum(data):
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()


def create(node, token, length, **headers):
    """A new upload of `length` bytes on `node`; returns its URL there."""
    reply = requests.post(node.url + "/files/", headers={**TUS, **auth(token), "Upload-Length": str(length), **headers}, timeout=10)
    assert reply.status_code == 201, reply.text
    return node.url + reply.headers["Location"]


def offset_of(url, token):
    reply = requests.head(url, headers={**TUS, **auth(token)}, timeout=10)
    assert reply.status_code == 200, f"HEAD {url}: {reply.status_code}"
    return int(reply.headers["Upload-Offset"])


def patch(url, token, offset, body, **headers):
    headers = {**TUS, **auth(token), "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream", **headers}
    return requests.patch(url, headers=headers, data=body, timeout=10)
