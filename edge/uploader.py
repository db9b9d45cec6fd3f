"""Evidence upload to central over HTTP, from the durable outbox, until central acknowledges.

The edge initiates every connection (nodes behind NAT or a mobile link work) and authenticates
as itself (HTTP Basic: node id + its upload token). Each file goes to
`PUT <central>/api/v1/evidence/<sha256>`; central keeps it only if the bytes hash to that sha256
and have the declared size, so a link that breaks mid-upload costs a retry, never a torn file.
A repeat upload is a no-op at central (200), so retrying after a lost answer is safe; a HEAD
first skips files central already has.

A file is marked delivered only on 200/201. Network errors and 5xx are retried with a doubling
backoff (reset by a success); a 4xx that says the file itself is wrong (sha256/size/type) is
kept, counted and logged loudly: retention will never delete it, an operator has to look.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx

from edge.outbox import Outbox, UploadItem

log = logging.getLogger("edge.uploader")

CHUNK = 256 * 1024


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


class EvidenceUploader:
    def __init__(
        self,
        outbox: Outbox,
        base_url: str,
        node_id: str,
        token: str,
        *,
        timeout_s: float = 60.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
    ) -> None:
        self.outbox = outbox
        self.base_url = base_url.rstrip("/")
        self.node_id = node_id
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._client = httpx.Client(
            auth=(node_id, token),
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            headers={"User-Agent": f"ioc-edge/{node_id}"},
        )
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evidence-uploader", daemon=True)
        self.uploaded = 0
        self.already_there = 0
        self.failures = 0
        self.refused = 0
        self.last_error: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._client.close()

    def notify(self) -> None:
        self._wake.set()

    def status(self) -> dict:
        files, size = self.outbox.upload_backlog()
        return {
            "backlog_files": files,
            "backlog_bytes": size,
            "uploaded": self.uploaded,
            "already_there": self.already_there,
            "failures": self.failures,
            "refused": self.refused,
            "last_error": self.last_error,
        }

    # -- work --------------------------------------------------------------------------------
    def url(self, sha256: str) -> str:
        return f"{self.base_url}/api/v1/evidence/{sha256}"

    def upload(self, item: UploadItem) -> bool:
        """One attempt; True when central has the file (now or already). Raises on a transport error."""
        path = Path(item.path)
        if not path.is_file():
            self._refuse(item, f"file missing on the node: {path}")
            return False
        size = os.path.getsize(path)
        if size != item.size:
            self._refuse(item, f"file is {size} bytes, the event says {item.size}")
            return False
        head = self._client.head(self.url(item.sha256))
        if head.status_code == 200:
            self.already_there += 1
            return True
        self._check_auth(head)
        r = self._client.put(
            self.url(item.sha256),
            content=_chunks(path),
            headers={"Content-Type": item.media_type, "Content-Length": str(size), "X-Evidence-Size": str(size)},
        )
        if r.status_code in (200, 201):
            if r.status_code == 200:
                self.already_there += 1
            return True
        self._check_auth(r)
        if 400 <= r.status_code < 500 and r.status_code not in (400, 408, 429):
            self._refuse(item, f"central refused: {r.status_code} {r.text[:200]}")
            return False
        raise httpx.HTTPStatusError(f"central answered {r.status_code}", request=r.request, response=r)

    def _check_auth(self, r: httpx.Response) -> None:
        if r.status_code in (401, 403):
            # Credentials are configuration: retried (central's list may be fixed) but said loudly.
            raise httpx.HTTPStatusError(
                f"central refused node {self.node_id!r}'s upload credentials ({r.status_code})",
                request=r.request,
                response=r,
            )

    def _refuse(self, item: UploadItem, reason: str) -> None:
        self.refused += 1
        self.last_error = reason
        self.outbox.upload_failed(item.sha256, reason)
        log.error("evidence %s not uploaded: %s (kept on the node)", item.sha256[:16], reason)

    def drain(self) -> int:
        """Upload what is pending now (one pass); returns how many files were delivered."""
        done = 0
        refused: set[str] = set()
        while not self._stop.is_set():
            items = [i for i in self.outbox.pending_uploads(limit=20) if i.sha256 not in refused]
            if not items:
                return done
            for item in items:
                if self._stop.is_set():
                    return done
                if self.upload(item):
                    self.outbox.upload_done(item.sha256)
                    self.uploaded += 1
                    done += 1
                    log.info("evidence %s delivered (%d bytes)", item.sha256[:16], item.size)
                else:
                    refused.add(item.sha256)
        return done

    def _run(self) -> None:
        backoff = self.backoff_initial_s
        while not self._stop.is_set():
            try:
                self.drain()
                backoff = self.backoff_initial_s
                self.last_error = None
                self._wake.wait(30.0)  # new uploads notify(); the timeout retries refused ones rarely
                self._wake.clear()
            except (httpx.HTTPError, OSError) as exc:
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("evidence upload failed (%s); retrying in %.0f s", self.last_error, backoff)
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, self.backoff_max_s)
