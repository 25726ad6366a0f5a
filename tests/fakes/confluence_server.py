"""A local Confluence Server/Data Center (REST v1) for the real atlassian-python-api: pages with every version
kept, history, PUT with optimistic locking (409), attachments (add, new version via /data, 415 on the buggy PUT
path), current user, Basic or Bearer auth (401),
invalid storage bodies (not well-formed XHTML) refused with 400 as Confluence does, unknown pages (404), scripted 429 + Retry-After."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from email.parser import BytesParser
from email.policy import default
from html.entities import name2codepoint
from urllib.parse import parse_qs, urlparse

from tests.fakes.http import FakeServer, Response


def _parse_multipart(content_type: str, body: bytes) -> dict:
    msg = BytesParser(policy=default).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[name] = {"filename": part.get_filename(), "content": part.get_payload(decode=True),
                        "content_type": part.get_content_type()}
    return fields


_XML_ENTITIES = {"amp", "lt", "gt", "quot", "apos"}
_STORAGE_NS = ('xmlns:ac="http://atlassian.com/content" xmlns:ri="http://atlassian.com/resource/identifier" '
               'xmlns:at="http://atlassian.com/template"')


def storage_error(body: str) -> str | None:
    """Why Confluence would refuse this storage-format body (it must be well-formed XHTML), or None.

    HTML named entities (&nbsp;) are accepted as Confluence does; everything else must parse as XML."""
    def entity(m: re.Match) -> str:
        name = m.group(1)
        if name in _XML_ENTITIES:
            return m.group(0)
        if name in name2codepoint:
            return f"&#{name2codepoint[name]};"
        return m.group(0)  # unknown: the parser reports it

    text = re.sub(r"&([A-Za-z][A-Za-z0-9]*);", entity, body)
    try:
        ET.fromstring(f"<root {_STORAGE_NS}>{text}</root>")
    except ET.ParseError as exc:
        return f"Error parsing xhtml: {exc}"
    return None


class FakeConfluence(FakeServer):
    def __init__(self, *, user: str = "svc", password: str = "pw", token: str | None = None) -> None:
        super().__init__()
        self.user, self.password, self.token = user, password, token
        self.pages: dict[str, list[dict]] = {}  # id -> versions (each {"number","title","body","message","minorEdit"})
        self.attachments: dict[str, dict[str, list[bytes]]] = {}  # page id -> filename -> versions
        self.att_ids: dict[str, tuple[str, str]] = {}
        self.script: list[tuple[int, dict]] = []  # consumed per request: (status, headers)
        self.conflict_once = False

    def add_page(self, page_id: str, title: str, body: str = "<p>empty</p>") -> None:
        self.pages[page_id] = [{"number": 1, "title": title, "body": body, "message": "", "minorEdit": False}]
        self.attachments[page_id] = {}

    def versions(self, page_id: str) -> int:
        return len(self.pages[page_id])

    def body(self, page_id: str) -> str:
        return self.pages[page_id][-1]["body"]

    def _authorized(self, headers: dict) -> bool:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if auth.startswith("Bearer "):
            return self.token is not None and auth[7:] == self.token
        if auth.startswith("Basic "):
            return base64.b64decode(auth[6:]).decode() == f"{self.user}:{self.password}"
        return False

    def _page_json(self, page_id: str, expand: str) -> dict:
        v = self.pages[page_id][-1]
        page = {"id": page_id, "type": "page", "status": "current", "title": v["title"], "space": {"key": "OPS"},
                "version": {"number": v["number"], "minorEdit": v["minorEdit"], "message": v["message"],
                            "when": "2026-11-28T10:00:00.000Z", "by": {"username": self.user}},
                "_links": {"webui": f"/pages/viewpage.action?pageId={page_id}", "base": self.url, "context": ""}}
        if "body.storage" in expand:
            page["body"] = {"storage": {"value": v["body"], "representation": "storage"}}
        return page

    def handle(self, request: dict) -> Response:
        if self.script:
            status, headers = self.script.pop(0)
            return Response(status, {"message": "Rate limit exceeded"}, headers)
        if not self._authorized(request["headers"]):
            return Response(401, {"statusCode": 401, "message": "Authentication failed"})
        url = urlparse(request["path"])
        parts = url.path.strip("/").split("/")
        query = parse_qs(url.query)
        method = request["method"]
        if parts[:3] != ["rest", "api", "content"] and parts[:4] != ["rest", "api", "user", "current"]:
            return Response(404, {"message": "not found"})
        if parts[:4] == ["rest", "api", "user", "current"]:
            return Response(200, {"type": "known", "username": self.user, "userKey": "k1"})
        rest = parts[3:]
        if method == "PUT" and rest and rest[0] in self.att_ids:
            return Response(415, {"message": "Unsupported Media Type"})
        page_id = rest[0] if rest else None
        if page_id not in self.pages:
            return Response(404, {"statusCode": 404, "message": "No content found with id: " + str(page_id)})
        if len(rest) == 1 and method == "GET":
            return Response(200, self._page_json(page_id, ",".join(query.get("expand", []))))
        if len(rest) == 2 and rest[1] == "history":
            return Response(200, {"latest": True, "lastUpdated": {"number": self.pages[page_id][-1]["number"],
                                                                  "message": self.pages[page_id][-1]["message"]}})
        if len(rest) == 1 and method == "PUT":
            data = json.loads(request["body"])
            current = self.pages[page_id][-1]["number"]
            if self.conflict_once:
                self.conflict_once = False
                self.pages[page_id].append({**self.pages[page_id][-1], "number": current + 1, "message": "edited by a person"})
                current += 1
            problem = storage_error(data["body"]["storage"]["value"])
            if problem:
                return Response(400, {"statusCode": 400, "message": f"com.atlassian.confluence.api.service.exceptions."
                                      f"BadRequestException: {problem}", "reason": "Bad Request"})
            if data["version"]["number"] != current + 1:
                return Response(409, {"statusCode": 409, "message": f"Version must be incremented on update. Current version is: {current}",
                                      "reason": "Conflict"})
            self.pages[page_id].append({"number": current + 1, "title": data["title"],
                                        "body": data["body"]["storage"]["value"],
                                        "message": data["version"].get("message", ""),
                                        "minorEdit": data["version"].get("minorEdit", False)})
            return Response(200, self._page_json(page_id, ""))
        if len(rest) >= 3 and rest[1:3] == ["child", "attachment"]:
            return self._attachments(page_id, rest[3:], request, query)
        return Response(400, {"message": "unsupported"})

    def _attachments(self, page_id: str, rest: list[str], request: dict, query: dict) -> Response:
        files = self.attachments[page_id]
        if request["method"] == "GET":
            wanted = query.get("filename", [None])[0]
            results = [{"id": att_id, "type": "attachment", "title": name, "version": {"number": len(files[name])}}
                       for att_id, (pid, name) in self.att_ids.items() if pid == page_id and name in files
                       and (wanted is None or wanted == name)]
            return Response(200, {"results": results, "start": 0, "limit": 50, "size": len(results)})
        if {k.lower(): v for k, v in request["headers"].items()}.get("x-atlassian-token") != "no-check":
            return Response(403, {"message": "XSRF check failed"})
        ctype = {k.lower(): v for k, v in request["headers"].items()}["content-type"]
        form = _parse_multipart(ctype, request["body"])
        upload = form["file"]
        if rest and rest[-1] == "data":  # new version of an existing attachment
            att_id = rest[0]
            files[self.att_ids[att_id][1]].append(upload["content"])
            return Response(200, {"id": att_id, "title": upload["filename"]})
        if upload["filename"] in files:
            return Response(400, {"message": f"Cannot add a new attachment with same file name as an existing attachment: {upload['filename']}"})
        att_id = f"att{len(self.att_ids) + 1}"
        self.att_ids[att_id] = (page_id, upload["filename"])
        files[upload["filename"]] = [upload["content"]]
        return Response(200, {"results": [{"id": att_id, "title": upload["filename"]}], "size": 1})
