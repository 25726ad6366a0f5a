"""`ailog confluence-publish --page-id ID --csv-file FILE --title TITLE`: one CSV as a table on one page."""

from __future__ import annotations

from pathlib import Path

from blocks.settings import load_settings
from core.errors import AilogError


def run(args) -> int:
    from tasks.publish.confluence.client import ConfluencePublisher
    from tasks.publish.confluence.pages import csv_page_body, data_hash

    path = Path(args.csv_file)
    if not path.is_file():
        raise AilogError(f"CSV file {path} does not exist")
    body = csv_page_body(args.title, path)
    if args.dry_run:
        print(body)
        return 0
    settings = load_settings().confluence
    result = ConfluencePublisher(settings).publish_page(
        args.page_id, args.title, body, data_hash=data_hash(path.read_bytes(), args.title.encode()), attachments=[path])
    print(f"{'published' if result.changed else 'unchanged,'} version {result.version} of page {args.page_id}: {result.url}")
    return 0
