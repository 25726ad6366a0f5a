"""Publish pages to Confluence Server/Data Center with atlassian-python-api, idempotently.

- unchanged data creates no new version: the data hash travels in the version message
  (`ailog-data-sha256:<hash>`) and is compared before writing;
- a 409 version conflict is retried on the fresh version; edits are minor (no watcher e-mails) by default;
- attachments go to the working endpoint (`POST .../child/attachment/{id}/data` for a new version), because
  the library's 5.0.5 update path sends a PUT that Server/DC rejects;
- 429/503 are retried by the library with backoff (Retry-After honoured); errors name the setting to fix and
  never contain the password or token.
Supported: Server/Data Center (REST v1) with username+password (Basic) or a personal access token (Bearer).
Confluence Cloud is not supported by this publisher (the library's Cloud class lacks these page calls).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import requests
from atlassian import Confluence

from blocks.settings import ConfluenceSettings
from core.errors import AilogError
from core.redact import redact

log = logging.getLogger("ailog.publish.confluence")
HASH_TAG = "ailog-data-sha256:"
CONTENT_TYPES = {".csv": "text/csv", ".png": "image/png", ".json": "application/json", ".md": "text/markdown"}


class ConfluenceError(AilogError):
    """Publishing failed; non-blocking for the flows, fatal for `ailog confluence-publish`."""


@dataclass
class PublishResult:
    page_id: str
    changed: bool
    version: int
    url: str


class ConfluencePublisher:
    def __init__(self, settings: ConfluenceSettings) -> None:
        if not settings.url:
            raise ConfluenceError("CONFLUENCE_URL is not set: give the base URL of the Confluence server")
        if not (settings.token or (settings.username and settings.password)):
            raise ConfluenceError("no Confluence credentials: set CONFLUENCE_USERNAME and CONFLUENCE_PASSWORD, "
                                  "or CONFLUENCE_TOKEN (a personal access token)")
        self.settings = settings
        auth = ({"token": settings.token.get_secret_value()} if settings.token and not settings.username
                else {"username": settings.username, "password": settings.password.get_secret_value()})
        self.api = Confluence(url=settings.url, cloud=False, timeout=settings.timeout, backoff_and_retry=True,
                              max_backoff_retries=4, max_backoff_seconds=30, retry_status_codes=[429, 503], **auth)

    def _fail(self, exc: Exception, what: str, page_env: str | None = None) -> ConfluenceError:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        secrets = tuple(s.get_secret_value() for s in (self.settings.password, self.settings.token) if s)
        detail = redact(str(exc), secrets)[:300]
        if status == 401:
            hint = "check CONFLUENCE_USERNAME/CONFLUENCE_PASSWORD or CONFLUENCE_TOKEN"
        elif status == 403:
            hint = "the service account may not edit this page"
        elif status == 404 or "no content with the given id" in str(exc).lower():
            hint = f"check {page_env or 'the page id'}"
        else:
            hint = "check CONFLUENCE_URL and that Confluence is reachable"
        return ConfluenceError(f"Confluence: {what} failed ({status or type(exc).__name__}: {detail}) — {hint}")

    def current(self, page_id: str, page_env: str | None = None) -> dict:
        try:
            return self.api.get_page_by_id(page_id, expand="version")
        except (requests.RequestException, Exception) as exc:  # the library raises HTTPError subclasses and ApiError
            raise self._fail(exc, f"reading page {page_id}", page_env) from None

    def publish_page(self, page_id: str, title: str, body: str, *, data_hash: str, attachments: list[Path] = (),
                     page_env: str | None = None) -> PublishResult:
        page = self.current(page_id, page_env)
        version = page.get("version") or {}
        url = self.settings.url + (page.get("_links") or {}).get("webui", f"/pages/viewpage.action?pageId={page_id}")
        if f"{HASH_TAG}{data_hash}" in (version.get("message") or ""):
            return PublishResult(page_id, False, int(version.get("number", 0)), url)
        for path in attachments:
            self.attach(page_id, Path(path))
        comment = f"{HASH_TAG}{data_hash} (published by ailog)"
        for attempt in range(3):
            try:
                self.api.update_page(page_id, title, body, representation="storage", minor_edit=self.settings.minor_edit,
                                     version_comment=comment, always_update=True, full_width=True)
                break
            except requests.HTTPError as exc:
                status = getattr(exc.response, "status_code", None)
                if status == 409 and attempt < 2:  # someone saved in between: retry on the fresh version
                    log.warning("Confluence page %s changed meanwhile (409); retrying on the new version", page_id)
                    continue
                raise self._fail(exc, f"updating page {page_id}", page_env) from None
            except Exception as exc:
                raise self._fail(exc, f"updating page {page_id}", page_env) from None
        new = self.current(page_id, page_env)
        return PublishResult(page_id, True, int((new.get("version") or {}).get("number", 0)), url)

    def attach(self, page_id: str, path: Path) -> None:
        """Add the file, or a new version of an attachment with the same name."""
        content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        headers = {"X-Atlassian-Token": "no-check"}
        try:
            existing = self.api.get(f"rest/api/content/{page_id}/child/attachment", params={"filename": path.name},
                                    headers={"X-Atlassian-Token": "no-check", "Accept": "application/json"}) or {}
            found = [a for a in existing.get("results", []) if a.get("title") == path.name]
            endpoint = (f"rest/api/content/{page_id}/child/attachment/{found[0]['id']}/data" if found
                        else f"rest/api/content/{page_id}/child/attachment")
            with open(path, "rb") as fh:
                self.api.post(endpoint, data={"minorEdit": "true", "comment": "ailog"}, headers=headers,
                              files={"file": (path.name, fh, content_type)})
        except Exception as exc:
            raise self._fail(exc, f"attaching {path.name} to page {page_id}") from None

    def verify_identity(self) -> str:
        """Who we are; a wrong token on Data Center silently becomes anonymous, so check it."""
        try:
            user = self.api.get("rest/api/user/current") or {}
        except Exception as exc:
            raise self._fail(exc, "checking the credentials") from None
        if user.get("type") == "anonymous" or not (user.get("username") or user.get("userKey")):
            raise ConfluenceError("Confluence accepted the request as anonymous: check CONFLUENCE_TOKEN / "
                                  "CONFLUENCE_USERNAME and CONFLUENCE_PASSWORD")
        return user.get("username") or user.get("userKey")
