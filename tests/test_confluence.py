"""Confluence publishing with the real atlassian-python-api against a local Server/DC: exact tables, one version
for unchanged data, 409 retried, attachments versioned, 401/404 named, hostile text escaped and well-formed."""

from __future__ import annotations

import csv
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from pydantic import SecretStr

from blocks.settings import ConfluenceSettings
from tasks.publish.confluence import storage
from tasks.publish.confluence.client import ConfluenceError, ConfluencePublisher
from tasks.publish.confluence.pages import csv_page_body, data_hash
from tests.fakes.confluence_server import FakeConfluence

HOSTILE = ["<script>alert(1)</script>", "a ]]> b", "**md** [x](javascript:alert(1))", "bell \x07 esc \x1b",
           "数据库错误 — ошибка", "=cmd|' /C calc'!A0", "x" * 1_000_000]
ROOT = '<root xmlns:ac="http://atlassian.com/ac" xmlns:ri="http://atlassian.com/ri">{}</root>'


def well_formed(body: str) -> ET.Element:
    return ET.fromstring(ROOT.format(body))


def settings(url: str, **kw) -> ConfluenceSettings:
    return ConfluenceSettings(url=url, username=kw.pop("username", "svc"), password=SecretStr(kw.pop("password", "pw")),
                              timeout=5, **kw)


@pytest.fixture
def wiki():
    with FakeConfluence() as server:
        server.add_page("100", "Known errors")
        yield server


@pytest.fixture
def table_csv(tmp_path):
    path = tmp_path / "errors.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["problem_id", "template", "count"])
        for i, text in enumerate(HOSTILE):
            w.writerow([f"P{i}", text, i])
    return path


def cells(body: str) -> list[list[str]]:
    root = well_formed(body)
    return [["".join(td.itertext()) for td in tr] for tr in root.iter("tr")]


def test_hostile_text_is_escaped_and_well_formed(table_csv):
    body = csv_page_body("Known errors", table_csv)
    rows = cells(body)
    assert rows[0] == ["problem_id", "template", "count"]
    assert rows[1][1] == "<script>alert(1)</script>" and "<script>" not in body
    assert rows[4][1] == "bell  esc "
    assert rows[7][1].endswith(" …") and len(rows[7][1]) < 3000
    code = storage.code_block("x ]]> y")
    assert "]]]]><![CDATA[>" in code
    well_formed(code)


def test_publish_once_then_unchanged_makes_no_new_version(wiki, table_csv):
    pub = ConfluencePublisher(settings(wiki.url))
    body = csv_page_body("Known errors", table_csv)
    digest = data_hash(table_csv.read_bytes())
    first = pub.publish_page("100", "Known errors", body, data_hash=digest, attachments=[table_csv])
    assert first.changed and wiki.versions("100") == 2
    assert cells(wiki.body("100"))[1:] == [[f"P{i}", *r[1:]] for i, r in enumerate(cells(body)[1:])]
    again = pub.publish_page("100", "Known errors", body, data_hash=digest, attachments=[table_csv])
    assert not again.changed and wiki.versions("100") == 2
    assert wiki.pages["100"][-1]["minorEdit"] is True
    table_csv.write_text("problem_id,template,count\nP9,new,1\n")
    third = pub.publish_page("100", "Known errors", csv_page_body("Known errors", table_csv),
                             data_hash=data_hash(table_csv.read_bytes()), attachments=[table_csv])
    assert third.changed and wiki.versions("100") == 3
    assert len(wiki.attachments["100"]["errors.csv"]) == 2  # a new attachment version, not a second file


def test_version_conflict_is_retried(wiki, table_csv):
    wiki.conflict_once = True  # a person saves the page between our read and our write
    r = ConfluencePublisher(settings(wiki.url)).publish_page("100", "T", "<p>x</p>", data_hash="h1")
    assert r.changed and wiki.pages["100"][-1]["body"] == "<p>x</p>"


def test_rate_limit_is_retried(wiki):
    wiki.script = [(429, {"Retry-After": "1"})]
    r = ConfluencePublisher(settings(wiki.url)).publish_page("100", "T", "<p>y</p>", data_hash="h2")
    assert r.changed


def test_wrong_password_and_unknown_page_are_named(wiki):
    with pytest.raises(ConfluenceError, match="CONFLUENCE_USERNAME") as err:
        ConfluencePublisher(settings(wiki.url, password="wrong-Secret-1")).publish_page("100", "T", "<p/>", data_hash="h")
    assert "wrong-Secret-1" not in str(err.value)
    with pytest.raises(ConfluenceError, match="CONFLUENCE_KNOWN_PEAKS_PAGE_ID"):
        ConfluencePublisher(settings(wiki.url)).publish_page("999", "T", "<p/>", data_hash="h",
                                                             page_env="CONFLUENCE_KNOWN_PEAKS_PAGE_ID")


def test_personal_access_token(table_csv):
    with FakeConfluence(token="pat-123") as server:
        server.add_page("7", "P")
        s = ConfluenceSettings(url=server.url, token=SecretStr("pat-123"), timeout=5)
        assert ConfluencePublisher(s).publish_page("7", "P", "<p>t</p>", data_hash="h").changed
        assert ConfluencePublisher(s).verify_identity() == "svc"


def test_confluence_publish_command(wiki, table_csv, tmp_path):
    env = {"CONFLUENCE_URL": wiki.url, "CONFLUENCE_USERNAME": "svc", "CONFLUENCE_PASSWORD": "pw",
           "AILOG_HOME": str(tmp_path), "PATH": ""}
    cmd = [sys.executable, "-m", "ailog.cli", "confluence-publish", "--page-id", "100", "--csv-file", str(table_csv),
           "--title", "Known errors"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert first.returncode == 0 and "published version 2" in first.stdout, first.stderr
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert "unchanged" in second.stdout and wiki.versions("100") == 2
    bad_cmd = [sys.executable, "-m", "ailog.cli", "confluence-publish", "--page-id", "404", "--csv-file",
               str(table_csv), "--title", "x"]
    bad = subprocess.run(bad_cmd, capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "pw" not in bad.stderr.split(":")[-1]
