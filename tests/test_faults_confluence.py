"""Confluence refusing, rate limiting and going away, with the real atlassian-python-api against a local
Server/DC that refuses malformed storage XHTML (400) as Confluence does."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from blocks.settings import ConfluenceSettings
from tasks.publish.confluence import storage
from tasks.publish.confluence.client import ConfluenceError, ConfluencePublisher
from tests.fakes.confluence_server import FakeConfluence, storage_error


def publisher(url: str) -> ConfluencePublisher:
    return ConfluencePublisher(ConfluenceSettings(url=url, username="svc", password=SecretStr("pw"), timeout=5))


def test_the_stand_in_refuses_what_confluence_refuses():
    assert storage_error("<p>a &amp; b&nbsp;c</p><ac:structured-macro ac:name=\"code\"/>") is None
    assert "xhtml" in storage_error("<p>unclosed")
    assert "xhtml" in storage_error("<p>a & b</p>")
    with FakeConfluence() as wiki:
        wiki.add_page("1", "P")
        with pytest.raises(ConfluenceError):
            publisher(wiki.url).publish_page("1", "P", "<p>disk <sda1> full</p>", data_hash="h")
        assert wiki.versions("1") == 1


def test_hostile_log_text_is_published_as_valid_storage():
    hostile = "disk <sda1> full & \x07 ]]> <script>x</script>"
    body = storage.heading(hostile) + storage.table(["a"], [[hostile]]) + storage.code_block(hostile)
    with FakeConfluence() as wiki:
        wiki.add_page("1", "P")
        assert publisher(wiki.url).publish_page("1", "P", body, data_hash="h").changed
        assert wiki.versions("1") == 2


@pytest.mark.parametrize("fault", [[(429, {"Retry-After": "1"})] * 8, [(503, {})] * 8, [(502, {})]])
def test_rate_limited_or_down_for_several_runs_ends_in_exactly_one_new_version(fault):
    with FakeConfluence() as wiki:
        wiki.add_page("1", "P")
        outcomes = []
        for _run in range(2):
            wiki.script = list(fault)
            try:
                outcomes.append(publisher(wiki.url).publish_page("1", "P", "<p>x</p>", data_hash="h1").changed)
            except ConfluenceError as exc:
                outcomes.append(str(exc))
        wiki.script = []
        publisher(wiki.url).publish_page("1", "P", "<p>x</p>", data_hash="h1")
        assert not publisher(wiki.url).publish_page("1", "P", "<p>x</p>", data_hash="h1").changed
        assert wiki.versions("1") == 2 and wiki.body("1") == "<p>x</p>", outcomes
        assert all("pw" not in str(o) for o in outcomes)
