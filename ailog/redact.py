"""Remove secret values from text before it reaches a log line, a report or an error message."""

from __future__ import annotations

import os
import re

SECRET_ENV = ("DB_PASSWORD", "DB_DDL_PASSWORD", "ES_PASSWORD", "ES_API_KEY", "TEAMS_WEBHOOK_URL",
              "CONFLUENCE_PASSWORD", "CONFLUENCE_TOKEN")
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
_SIG = re.compile(r"(?P<k>[?&](?:sig|token|api_key|apikey|password)=)[^&\s]+", re.IGNORECASE)


def redact(text: str, extra: tuple[str, ...] = ()) -> str:
    """Replace known secret values, URL credentials and signature parameters with ****."""
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "**********")
    for value in extra:
        if value and len(value) >= 4:
            text = text.replace(value, "**********")
    text = _URL_CREDENTIALS.sub(r"\g<scheme>****:****@", text)
    return _SIG.sub(r"\g<k>****", text)
