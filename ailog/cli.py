"""The `ailog` command: argument parsing only; every command lives in ailog/commands/.

Imports are lazy so that quick commands (group, --help) start fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

COMMANDS_HELP = {
    "backfill": "analyse whole days (default: yesterday), write reports, then publish",
    "regular": "analyse the 15-minute windows since the last run (or --at / --start --end)",
    "publish": "publish a day's reports to Teams and Confluence and deliver queued messages",
    "group": "group log messages (one per line) into problems: problem_id<TAB>template",
    "confluence-publish": "publish one CSV as a table to one Confluence page",
    "teams-test": "send a test notification (backfill completed, sample figures)",
    "db": "database: migrate, status, stop the embedded server",
    "demo": "generate sample logs with incidents and run the whole job on embedded defaults",
    "problem": "mute, unmute, rename, acknowledge or annotate a problem",
    "registry": "back up / restore the known-errors and known-peaks registries (YAML)",
    "blocks": "register the Prefect block types, or create block documents from environment variables",
    "doctor": "check every configured dependency and print a pass/fail table",
    "serve": "serve the three flows locally on their schedules (prefect serve)",
    "automations": "create/update the Prefect automations that alert Teams about the jobs themselves",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-log-analyzer")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _add_input_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", nargs="+", metavar="PATH", help="NDJSON log files (.ndjson or .ndjson.gz) instead of Elasticsearch")
    p.add_argument("--output", default=None, metavar="DIR",
                   help="report directory (default $AILOG_REPORTS_DIR, else ./reports)")
    p.add_argument("--dry-run", action="store_true", help="read and analyse, write and send nothing; print what would happen")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ailog",
        description="AI Log Analyzer: error logs → problems, peaks, alerts and daily reports.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors (implies --verbose)")
    parser.add_argument("--verbose", action="store_true",
                        help="also show Prefect's run and task logs at the terminal (they always reach the Prefect UI)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("backfill", help=COMMANDS_HELP["backfill"], description=COMMANDS_HELP["backfill"])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--days", type=int, default=None, help="the N whole days before today (UTC); default 1")
    g.add_argument("--start", metavar="DATE", help="first day (YYYY-MM-DD, UTC), with --end")
    p.add_argument("--end", metavar="DATE", help="last day, included")
    _add_input_output(p)
    p.add_argument("--no-publish", action="store_true", help="do not run the publish subflow at the end")

    p = sub.add_parser("regular", help=COMMANDS_HELP["regular"], description=COMMANDS_HELP["regular"])
    p.add_argument("--window", type=int, default=15, help="window length in minutes (default 15)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--at", metavar="TIME", help="re-run the window ending at TIME (ISO-8601)")
    g.add_argument("--start", metavar="TIME", help="process every window from TIME (ISO-8601), with --end")
    p.add_argument("--end", metavar="TIME", help="end of the range (ISO-8601)")
    _add_input_output(p)

    p = sub.add_parser("publish", help=COMMANDS_HELP["publish"], description=COMMANDS_HELP["publish"])
    p.add_argument("--date", metavar="DATE", help="day to publish (default: yesterday, UTC)")
    p.add_argument("--output", default=None, metavar="DIR",
                   help="report directory (default $AILOG_REPORTS_DIR, else ./reports)")
    p.add_argument("--dry-run", action="store_true", help="render what would be published, send nothing")

    p = sub.add_parser("group", help=COMMANDS_HELP["group"], description=COMMANDS_HELP["group"])
    p.add_argument("file", nargs="?", help="input file (default: stdin)")

    p = sub.add_parser("confluence-publish", help=COMMANDS_HELP["confluence-publish"],
                       description=COMMANDS_HELP["confluence-publish"])
    p.add_argument("--page-id", required=True)
    p.add_argument("--csv-file", required=True)
    p.add_argument("--title", required=True)
    p.add_argument("--dry-run", action="store_true", help="print the page body, send nothing")

    p = sub.add_parser("teams-test", help=COMMANDS_HELP["teams-test"], description=COMMANDS_HELP["teams-test"])
    p.add_argument("--dry-run", action="store_true", help="print the card, send nothing")

    p = sub.add_parser("db", help=COMMANDS_HELP["db"], description=COMMANDS_HELP["db"])
    dsub = p.add_subparsers(dest="db_command", metavar="ACTION")
    dsub.required = True
    dsub.add_parser("migrate", help="apply the schema migrations (idempotent)")
    dsub.add_parser("status", help="show where the database is and its schema version")
    dsub.add_parser("stop", help="stop the embedded PostgreSQL server of AILOG_HOME")

    p = sub.add_parser("demo", help=COMMANDS_HELP["demo"], description=COMMANDS_HELP["demo"])
    p.add_argument("--output", default=None, metavar="DIR", help="where to write the sample logs and reports (default ./reports)")
    p.add_argument("--days", type=int, default=None, help="days of history to generate (default 8)")
    p.add_argument("--seed", type=int, default=7)

    p = sub.add_parser("problem", help=COMMANDS_HELP["problem"], description=COMMANDS_HELP["problem"])
    psub = p.add_subparsers(dest="problem_command", metavar="ACTION")
    psub.required = True
    for action, helptext in (("mute", "stop alerting on a problem"), ("unmute", "alert again"),
                             ("acknowledge", "mark as seen by a person")):
        a = psub.add_parser(action, help=helptext)
        a.add_argument("problem_id")
        a.add_argument("--by", required=action != "unmute", default=None, help="who does it")
        a.add_argument("--reason", default=None)
    a = psub.add_parser("rename", help="give a problem a readable title")
    a.add_argument("problem_id")
    a.add_argument("title")
    a = psub.add_parser("annotate", help="attach a note and/or a ticket id")
    a.add_argument("problem_id")
    a.add_argument("--note", default=None)
    a.add_argument("--ticket", default=None)
    psub.add_parser("list", help="list problems")

    p = sub.add_parser("registry", help=COMMANDS_HELP["registry"], description=COMMANDS_HELP["registry"])
    rsub = p.add_subparsers(dest="registry_command", metavar="ACTION")
    rsub.required = True
    a = rsub.add_parser("export", help="write both registries and people's edits to YAML")
    a.add_argument("file")
    a = rsub.add_parser("import", help="load a YAML backup (importing twice is harmless)")
    a.add_argument("file")

    p = sub.add_parser("blocks", help=COMMANDS_HELP["blocks"], description=COMMANDS_HELP["blocks"])
    bsub = p.add_subparsers(dest="blocks_command", metavar="ACTION")
    bsub.required = True
    bsub.add_parser("register", help="register the block types with the Prefect API")
    bsub.add_parser("from-env", help="create/update the block documents from DB_*, ES_*, TEAMS_*, CONFLUENCE_* variables")

    sub.add_parser("doctor", help=COMMANDS_HELP["doctor"], description=COMMANDS_HELP["doctor"])
    p = sub.add_parser("automations", help=COMMANDS_HELP["automations"], description=COMMANDS_HELP["automations"])
    p.add_argument("--webhook-block", default="ailog-teams-webhook",
                   help="Prefect Webhook block to call (created from TEAMS_WEBHOOK_URL when missing)")
    p = sub.add_parser("serve", help=COMMANDS_HELP["serve"], description=COMMANDS_HELP["serve"])
    p.add_argument("--input", nargs="+", metavar="PATH", help="NDJSON files instead of Elasticsearch")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("AILOG_DEBUG", "").lower() in {"1", "true", "yes"}
    if debug or args.verbose:
        os.environ["AILOG_VERBOSE"] = "1"
    module = importlib.import_module(f"ailog.commands.{args.command.replace('-', '_')}")
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("ailog: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # one clear line, no traceback unless --debug
        if debug:
            raise
        from core.errors import AilogError

        if isinstance(exc, AilogError):
            print(f"ailog {args.command}: error: {exc}", file=sys.stderr)
            return exc.exit_code
        from core.redact import redact

        print(f"ailog {args.command}: failed: {type(exc).__name__}: {redact(str(exc)).splitlines()[0] if str(exc) else ''} "
              "(run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
