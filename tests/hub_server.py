"""A small in-memory stand-in for the Hugging Face Hub HTTP API, for offline push/pull tests.

It answers the calls that ``huggingface_hub`` (2.x) makes for ``create_repo``, ``upload_folder`` /
``create_commit`` (preupload, NDJSON commit with base64 files), ``validate_yaml``, ``model_info`` /
``repo_info``, ``list_repo_tree``, ``hf_hub_download`` and ``snapshot_download`` (``resolve`` with
``X-Repo-Commit``/``ETag`` headers, HEAD, GET and byte ranges). Point a client at it with
``HF_ENDPOINT=<server.endpoint>`` and any ``HF_TOKEN``.

Every file is declared a regular (inline) git file in the preupload answer, so the client never starts an
LFS or Xet transfer: that part of the real Hub protocol is not exercised. Bodies and the total stored size
are bounded, the server listens on a loopback address only, and ``stop()`` (or leaving the ``with`` block)
shuts it down.

Run it by hand with ``python tests/hub_server.py [PORT]``.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

import yaml

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
_FRONT_MATTER = re.compile(rb"\A---\s*\n(.*?)\n---\s*(\n|\Z)", re.DOTALL)
_COMMIT_HASH = re.compile(r"[0-9a-f]{40}")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, which the Hub reports as a regular file's ``oid`` and ``ETag``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubError(Exception):
    """An HTTP error answer, with the ``X-Error-Code`` header that ``huggingface_hub`` maps to its errors."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class Commit:
    oid: str
    summary: str
    files: dict[str, bytes]
    date: float = field(default_factory=time.time)


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    private: bool
    commits: list[Commit]

    @property
    def head(self) -> Commit:
        return self.commits[-1]

    def revision(self, revision: str) -> Commit:
        if revision in ("main", "refs/heads/main"):
            return self.head
        for commit in self.commits:
            if _COMMIT_HASH.fullmatch(revision) and commit.oid == revision:
                return commit
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


class FakeHub:
    """The repositories, commits and request log of the fake Hub, and its HTTP server thread.

    Args:
        host: a loopback address to listen on.
        port: 0 picks a free port.
        max_body_bytes: largest accepted request body.
        max_store_bytes: largest total size of all stored file versions.
        user: the name ``whoami`` returns and the namespace of repo ids given without one.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, max_body_bytes: int = 64 << 20,
                 max_store_bytes: int = 256 << 20, user: str = "user"):
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"FakeHub listens on loopback addresses only, got host={host!r}.")
        self.max_body_bytes, self.max_store_bytes, self.user = max_body_bytes, max_store_bytes, user
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self.lock = threading.Lock()
        self._stored_bytes = 0
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.hub = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- repository operations (called with the lock held) ---------------------------------------------

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        try:
            return self.repos[(repo_type, repo_id)]
        except KeyError:
            raise HubError(404, f"Repository Not Found for {repo_type} {repo_id}", "RepoNotFound") from None

    def create_repo(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        if (repo_type, repo_id) in self.repos:
            raise HubError(409, "You already created this model repo")
        initial = Commit(self._commit_oid(repo_id, "initial commit", {}), "initial commit",
                         {".gitattributes": GITATTRIBUTES})
        self.repos[(repo_type, repo_id)] = repo = Repo(repo_id, repo_type, private, [initial])
        return repo

    def add_repo(self, repo_id: str, files: dict[str, bytes], repo_type: str = "model") -> Repo:
        """Create a repo holding ``files`` directly, as if someone else had pushed them."""
        with self.lock:
            repo = self.create_repo(repo_type, repo_id, private=False)
            lines = [{"key": "header", "value": {"summary": "Upload files"}}]
            lines += [{"key": "file", "value": {"path": path, "encoding": "base64",
                                                "content": base64.b64encode(data).decode()}}
                      for path, data in files.items()]
            self.commit(repo, "main", lines)
            return repo

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """The files of a repo at a revision."""
        with self.lock:
            return dict(self.repo(repo_type, repo_id).revision(revision).files)

    def commit(self, repo: Repo, revision: str, lines: list[dict]) -> Commit:
        parent = repo.revision(revision)
        if parent is not repo.head:
            raise HubError(400, "commits are only accepted on the main branch by this fake Hub")
        header, files = None, dict(parent.files)
        for line in lines:
            key, value = line.get("key"), line.get("value") or {}
            if key == "header":
                header = value
                if value.get("parentCommit") not in (None, parent.oid):
                    raise HubError(412, "A commit has happened since. Please refresh and try again.")
            elif key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, f"unsupported encoding {value.get('encoding')!r} for {value.get('path')}")
                files[_clean_path(value["path"])] = base64.b64decode(value["content"], validate=True)
            elif key == "deletedFile":
                files.pop(_clean_path(value["path"]), None)
            elif key == "deletedFolder":
                prefix = _clean_path(value["path"]).rstrip("/") + "/"
                files = {path: data for path, data in files.items() if not path.startswith(prefix)}
            elif key == "lfsFile":
                raise HubError(400, f"{value.get('path')}: LFS files are not supported by this fake Hub "
                                    "(its preupload answer asks for regular uploads only)")
            else:
                raise HubError(400, f"unknown commit line key {key!r}")
        if header is None:
            raise HubError(400, "the commit payload has no header line")
        new_bytes = sum(len(data) for path, data in files.items() if parent.files.get(path) is not data)
        if self._stored_bytes + new_bytes > self.max_store_bytes:
            raise HubError(413, f"the fake Hub stores at most {self.max_store_bytes} bytes")
        self._stored_bytes += new_bytes
        summary = header.get("summary") or "commit"
        commit = Commit(self._commit_oid(repo.repo_id, summary, files, parent.oid), summary, files)
        repo.commits.append(commit)
        return commit

    @staticmethod
    def _commit_oid(repo_id: str, summary: str, files: dict[str, bytes], parent: str = "") -> str:
        digest = hashlib.sha1(f"{repo_id}\0{parent}\0{summary}\0{time.time_ns()}".encode())
        for path in sorted(files):
            digest.update(f"{path}\0{git_blob_sha1(files[path])}\0".encode())
        return digest.hexdigest()


def _clean_path(path: str) -> str:
    parts = path.strip("/").split("/")
    if not path or any(part in ("", ".", "..") for part in parts):
        raise HubError(400, f"invalid path in repo: {path!r}")
    return "/".join(parts)


def _card_data(files: dict[str, bytes]) -> dict | None:
    match = _FRONT_MATTER.match(files.get("README.md", b""))
    if not match:
        return None
    data = yaml.safe_load(match.group(1))
    return data if isinstance(data, dict) else None


_REPO = r"(?P<repo_id>[^/]+/[^/]+)"
_TYPES = r"(?P<repo_type>model|dataset|space)s"
_ROUTES: list[tuple[str, re.Pattern, str]] = [
    (method, re.compile(pattern + r"\Z"), name)
    for method, pattern, name in [
        ("POST", r"/api/repos/create", "create_repo"),
        ("POST", r"/api/validate-yaml", "validate_yaml"),
        ("GET", r"/api/whoami-v2", "whoami"),
        ("POST", rf"/api/{_TYPES}/{_REPO}/preupload/(?P<revision>[^/]+)", "preupload"),
        ("POST", rf"/api/{_TYPES}/{_REPO}/commit/(?P<revision>[^/]+)", "commit"),
        ("GET", rf"/api/{_TYPES}/{_REPO}/tree/(?P<revision>[^/]+)(?P<path>/.*)?", "tree"),
        ("GET", rf"/api/{_TYPES}/{_REPO}(?:/revision/(?P<revision>[^/]+))?", "info"),
        ("GET", rf"/(?:(?P<repo_type>dataset|space)s/)?{_REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)", "resolve"),
        ("HEAD", rf"/(?:(?P<repo_type>dataset|space)s/)?{_REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)", "resolve"),
    ]
]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds an idle keep-alive connection may hold a thread
    server_version = "FakeHub/1.0"

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def log_message(self, format: str, *args) -> None:
        pass  # the request log lives in FakeHub.requests

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # -- plumbing --------------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        status = 500
        try:
            body = self._read_body()
            for route_method, pattern, name in _ROUTES:
                match = pattern.match(url.path)
                if match and route_method == method:
                    params = {key: unquote(value) for key, value in match.groupdict().items() if value is not None}
                    with self.hub.lock:
                        status = getattr(self, f"_{name}")(body=body, **params)
                    break
            else:
                raise HubError(404, f"no such endpoint: {method} {url.path}")
        except HubError as error:
            status = error.status
            self._send_json(error.status, {"error": error.message}, code=error.code, message=error.message)
        except (ValueError, KeyError, TypeError) as error:
            status = 400
            self._send_json(400, {"error": f"bad request: {error!r}"})
        finally:
            with self.hub.lock:
                self.hub.requests.append((method, url.path, status))

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                total += size
                if total > self.hub.max_body_bytes:
                    self.close_connection = True
                    raise HubError(413, f"request body over {self.hub.max_body_bytes} bytes")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
                if size == 0:
                    return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.hub.max_body_bytes:
            self.close_connection = True
            raise HubError(413, f"request body over {self.hub.max_body_bytes} bytes")
        return self.rfile.read(length) if length else b""

    def _require_token(self) -> None:
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            raise HubError(401, "Invalid credentials in Authorization header")

    def _send(self, status: int, data: bytes, headers: dict[str, str], content_length: int | None = None) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data) if content_length is None else content_length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_json(self, status: int, payload, code: str | None = None, message: str | None = None,
                   headers: dict[str, str] | None = None) -> int:
        extra = dict(headers or {})
        if code:
            extra["X-Error-Code"] = code
        if message:
            extra["X-Error-Message"] = message.encode("ascii", "replace").decode()
        self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **extra})
        return status

    # -- endpoints -------------------------------------------------------------------------------------

    def _whoami(self, body: bytes) -> int:
        self._require_token()
        return self._send_json(200, {"type": "user", "name": self.hub.user, "orgs": [],
                                     "auth": {"accessToken": {"role": "write"}}})

    def _create_repo(self, body: bytes) -> int:
        self._require_token()
        payload = json.loads(body)
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or self.hub.user}/{payload['name']}"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.hub.endpoint}/{prefix}{repo_id}"
        if (repo_type, repo_id) in self.hub.repos:  # the real Hub names the existing repo in its 409 answer
            return self._send_json(409, {"error": "You already created this model repo", "url": url},
                                   message="You already created this model repo")
        self.hub.create_repo(repo_type, repo_id, payload.get("visibility") == "private")
        return self._send_json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self, body: bytes) -> int:
        content = json.loads(body).get("content", "")
        match = _FRONT_MATTER.match(content.encode())
        errors = []
        try:
            metadata = yaml.safe_load(match.group(1)) if match else None
        except yaml.YAMLError as error:
            metadata, errors = None, [{"message": f"YAML does not parse: {error}"}]
        if not errors and not isinstance(metadata, dict):
            errors = [{"message": "the README.md has no YAML metadata block"}]
        if not errors:
            if "license" in metadata and not isinstance(metadata["license"], str):
                errors.append({"message": "\"license\" must be a string"})
            tags = metadata.get("tags", [])
            if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
                errors.append({"message": "\"tags\" must be a list of strings"})
        return self._send_json(400 if errors else 200, {"errors": errors, "warnings": []})

    def _preupload(self, body: bytes, repo_type: str, repo_id: str, revision: str) -> int:
        self._require_token()
        commit = self.hub.repo(repo_type, repo_id).revision(revision)
        answer = []
        for item in json.loads(body)["files"]:
            path = _clean_path(item["path"])
            existing = commit.files.get(path)
            answer.append({"path": item["path"], "uploadMode": "regular", "shouldIgnore": False,
                           "oid": git_blob_sha1(existing) if existing is not None else None})
        return self._send_json(200, {"files": answer, "commitOid": commit.oid})

    def _commit(self, body: bytes, repo_type: str, repo_id: str, revision: str) -> int:
        self._require_token()
        if self.query.get("create_pr") in ("1", "true"):
            raise HubError(400, "pull requests are not supported by this fake Hub")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        repo = self.hub.repo(repo_type, repo_id)
        commit = self.hub.commit(repo, revision, lines)
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        return self._send_json(200, {"success": True, "commitOid": commit.oid, "pullRequestUrl": None,
                                     "commitUrl": f"{self.hub.endpoint}/{prefix}{repo_id}/commit/{commit.oid}"})

    def _info(self, body: bytes, repo_type: str, repo_id: str, revision: str = "main") -> int:
        repo = self.hub.repo(repo_type, repo_id)
        commit = repo.revision(revision)
        card = _card_data(commit.files) or {}
        info = {
            "id": repo_id, "modelId": repo_id, "author": repo_id.split("/")[0], "sha": commit.oid,
            "private": repo.private, "gated": False, "disabled": False, "downloads": 0, "likes": 0,
            "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(commit.date)),
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(repo.commits[0].date)),
            "tags": list(card.get("tags") or []), "library_name": card.get("library_name"),
            "pipeline_tag": card.get("pipeline_tag"), "cardData": card or None,
            "siblings": [{"rfilename": path} for path in sorted(commit.files)],
        }
        return self._send_json(200, info)

    def _tree(self, body: bytes, repo_type: str, repo_id: str, revision: str, path: str = "") -> int:
        commit = self.hub.repo(repo_type, repo_id).revision(revision)
        base = path.strip("/")
        prefix = f"{base}/" if base else ""
        recursive = self.query.get("recursive", "false").lower() in ("1", "true")
        if base and base in commit.files:
            raise HubError(404, f"{base} is a file, not a folder", "EntryNotFound")
        entries, folders = [], set()
        for file_path in sorted(commit.files):
            if not file_path.startswith(prefix):
                continue
            rest = file_path[len(prefix):].split("/")
            for depth in range(1, len(rest)):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(rest[:depth]))
            if recursive or len(rest) == 1:
                data = commit.files[file_path]
                entries.append({"type": "file", "path": file_path, "size": len(data), "oid": git_blob_sha1(data)})
        if base and not entries and not folders:
            raise HubError(404, f"{base} does not exist at {revision}", "EntryNotFound")
        for folder in sorted(folders):
            entries.append({"type": "directory", "path": folder,
                            "oid": hashlib.sha1(f"tree {commit.oid} {folder}".encode()).hexdigest()})
        return self._send_json(200, entries)

    def _resolve(self, body: bytes, repo_id: str, revision: str, path: str, repo_type: str = "model") -> int:
        commit = self.hub.repo(repo_type, repo_id).revision(revision)
        data = commit.files.get(path)
        if data is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        etag = f'"{git_blob_sha1(data)}"'
        headers = {"Content-Type": "application/octet-stream", "ETag": etag, "X-Repo-Commit": commit.oid,
                   "Accept-Ranges": "bytes", "Last-Modified": formatdate(commit.date, usegmt=True),
                   "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.split('/')[-1])}"}
        status, part = 200, data
        byte_range = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if byte_range and byte_range.group(0) != "bytes=-":
            first, last = byte_range.groups()
            start = int(first) if first else max(0, len(data) - int(last))
            end = min(int(last), len(data) - 1) if first and last else len(data) - 1
            if start >= len(data) or start > end:
                self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return 416
            status, part = 206, data[start:end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        self._send(status, part, headers)
        return status


def main() -> None:
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with FakeHub(port=port) as hub:
        print(f"fake Hub at {hub.endpoint} (Ctrl-C stops it)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
