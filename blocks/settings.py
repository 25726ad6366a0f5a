"""All configuration, read in one place.

Order of precedence for each section: a Prefect block document (when a Prefect API is configured
and the document exists) → the environment variables of the user's Kubernetes config → defaults.
Secrets are ``SecretStr`` everywhere: they print as ``**********`` in repr, logs and errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from core.db.settings import DatabaseSettings
from core.errors import ConfigError
from core.redact import register_settings

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool, env: dict[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def env_int(name: str, default: int, env: dict[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def env_secret(name: str, env: dict[str, str] | None = None) -> SecretStr | None:
    env = os.environ if env is None else env
    raw = env.get(name)
    return SecretStr(raw) if raw else None


@dataclass(frozen=True)
class ElasticsearchSettings:
    """Where the logs come from. ``url`` None means no Elasticsearch configured."""

    url: str | None = None
    index: str = "logs-*"
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    query_filter: dict | None = None  # extra bool filter, e.g. {"terms": {"log.level": ["ERROR", "FATAL"]}}
    page_size: int = 5000
    slices: int = 1
    request_timeout: float = 30.0
    max_retries: int = 3
    keep_alive: str = "2m"
    # ECS field names; override for other mappings
    fields: dict[str, str] = field(
        default_factory=lambda: {
            "timestamp": "@timestamp",
            "message": "message",
            "level": "log.level",
            "app": "service.name",
            "namespace": "kubernetes.namespace",
            "pod": "kubernetes.pod.name",
            "host": "host.name",
            "version": "service.version",
            "error_type": "error.type",
            "error_message": "error.message",
            "stack_trace": "error.stack_trace",
            "trace_id": "trace.id",
        }
    )

    @property
    def configured(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True)
class TeamsSettings:
    webhook_url: SecretStr | None = None  # the whole URL is a secret (sig= parameter)
    enabled: bool = True
    kind: str = "auto"  # auto | legacy | workflow
    timeout: float = 30.0
    retry_budget_hours: float = 24.0  # a message undelivered this long after it was queued is dead
    alert_stale_minutes: int = 120  # alerts queued longer than this go out as one digest instead

    @property
    def active(self) -> bool:
        return self.enabled and self.webhook_url is not None


@dataclass(frozen=True)
class ConfluenceSettings:
    url: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None  # personal access token (Server/DC ≥ 7.9)
    daily_report_page_id: str | None = None
    known_errors_page_id: str | None = None
    known_peaks_page_id: str | None = None
    minor_edit: bool = True
    timeout: float = 60.0
    auto_publish_regular: bool = False

    @property
    def configured(self) -> bool:
        return bool(self.url)

    def require_pages(self) -> None:
        """Raise a ConfigError naming the first missing page id."""
        for env_name, value in (
            ("CONFLUENCE_DAILY_REPORT_PAGE_ID", self.daily_report_page_id),
            ("CONFLUENCE_KNOWN_ERRORS_PAGE_ID", self.known_errors_page_id),
            ("CONFLUENCE_KNOWN_PEAKS_PAGE_ID", self.known_peaks_page_id),
        ):
            if not value:
                raise ConfigError(f"{env_name} is not set: give the id of the Confluence page to publish to")


@dataclass(frozen=True)
class AnalysisSettings:
    """How windows are analysed; the rule files let users change grouping and severity without code."""

    window_minutes: int = 15
    ingest_lag_minutes: int = 5
    max_catchup_windows: int = 96  # 24 h; beyond that the operator is told to run a backfill
    fingerprint_rules: Path | None = None  # YAML, see docs/CONFIGURATION.md
    detection_rules: Path | None = None  # YAML, see docs/CONFIGURATION.md
    retention_days: int = 90
    pushgateway_url: str | None = None
    # issue 14: late windows still alert when this recent; older ones go into one summary message
    live_alert_minutes: int = 120
    lookback_windows: int = 2  # each regular run re-reads this many windows before the due ones (late logs)
    incomplete_wait_minutes: int = 15  # an incomplete-looking latest window waits at most this long
    recovered_messages: bool = True  # a short "recovered" follow-up when an alerted incident goes quiet
    scrub_patterns: Path | None = None  # YAML of extra log-content scrubbing patterns, see docs/PRIVACY.md
    scrub_defaults: bool = True  # the built-in patterns (secrets, cards, IBANs, e-mails)
    read_ahead: bool = True  # runs of many windows read and group them in a second process (tasks.read_ahead)


@dataclass(frozen=True)
class ReportsSettings:
    """Where the report files go (report JSON, Markdown, charts, CSVs).

    Nothing a later run needs is read from here (it is all in PostgreSQL): in a pod this is scratch space (the
    image sets ``AILOG_REPORTS_DIR=/tmp/ailog/reports``); mount a volume there to keep the files.
    """

    directory: str = "reports"


@dataclass(frozen=True)
class Settings:
    home: Path
    database: DatabaseSettings
    elasticsearch: ElasticsearchSettings
    teams: TeamsSettings
    confluence: ConfluenceSettings
    analysis: AnalysisSettings
    sources: dict[str, str] = field(default_factory=dict)  # section -> "block:<name>" | "env" | "default"
    reports: ReportsSettings = field(default_factory=ReportsSettings)


def _es_url(env: dict[str, str]) -> str | None:
    host = env.get("ES_HOST", "").strip()
    if not host:
        return None
    if "://" in host:
        return host.rstrip("/")
    port = env_int("ES_PORT", 9200, env)
    return f"https://{host}:{port}"


def database_from_env(env: dict[str, str]) -> DatabaseSettings:
    return DatabaseSettings(
        host=env.get("DB_HOST") or None,
        port=env_int("DB_PORT", 5432, env),
        name=env.get("DB_NAME") or "ailog",
        user=env.get("DB_USER") or "ailog",
        password=env_secret("DB_PASSWORD", env),
        ddl_user=env.get("DB_DDL_USER") or None,
        ddl_password=env_secret("DB_DDL_PASSWORD", env),
        ddl_role=env.get("DB_DDL_ROLE") or None,
        statement_timeout_ms=env_int("DB_STATEMENT_TIMEOUT_MS", 300_000, env),
    )


def elasticsearch_from_env(env: dict[str, str]) -> ElasticsearchSettings:
    import json

    raw_filter = env.get("ES_QUERY_FILTER")
    query_filter = None
    if raw_filter:
        try:
            query_filter = json.loads(raw_filter)
        except ValueError:
            raise ConfigError("ES_QUERY_FILTER must be a JSON Elasticsearch query clause") from None
    base = ElasticsearchSettings()
    fields = dict(base.fields)
    for key in fields:
        override = env.get(f"ES_FIELD_{key.upper()}")
        if override:
            fields[key] = override
    return ElasticsearchSettings(
        url=_es_url(env),
        index=env.get("ES_INDEX") or "logs-*",
        username=env.get("ES_USERNAME") or None,
        password=env_secret("ES_PASSWORD", env),
        api_key=env_secret("ES_API_KEY", env),
        ca_certs=env.get("ES_CA_CERTS") or None,
        verify_certs=env_bool("ES_VERIFY_CERTS", True, env),
        query_filter=query_filter,
        page_size=env_int("ES_PAGE_SIZE", 5000, env),
        slices=env_int("ES_SLICES", 1, env),
        fields=fields,
    )


def teams_from_env(env: dict[str, str]) -> TeamsSettings:
    kind = (env.get("TEAMS_WEBHOOK_KIND") or "auto").lower()
    if kind not in {"auto", "legacy", "workflow"}:
        raise ConfigError(f"TEAMS_WEBHOOK_KIND must be auto, legacy or workflow, got {kind!r}")
    return TeamsSettings(
        webhook_url=env_secret("TEAMS_WEBHOOK_URL", env),
        enabled=env_bool("TEAMS_ENABLED", True, env),
        kind=kind,
        retry_budget_hours=env_int("TEAMS_RETRY_BUDGET_HOURS", 24, env),
        alert_stale_minutes=env_int("TEAMS_ALERT_STALE_MINUTES", 120, env),
    )


def confluence_from_env(env: dict[str, str]) -> ConfluenceSettings:
    return ConfluenceSettings(
        url=(env.get("CONFLUENCE_URL") or "").rstrip("/") or None,
        username=env.get("CONFLUENCE_USERNAME") or None,
        password=env_secret("CONFLUENCE_PASSWORD", env),
        token=env_secret("CONFLUENCE_TOKEN", env),
        daily_report_page_id=env.get("CONFLUENCE_DAILY_REPORT_PAGE_ID") or None,
        known_errors_page_id=env.get("CONFLUENCE_KNOWN_ERRORS_PAGE_ID") or None,
        known_peaks_page_id=env.get("CONFLUENCE_KNOWN_PEAKS_PAGE_ID") or None,
        minor_edit=env_bool("CONFLUENCE_MINOR_EDIT", True, env),
        auto_publish_regular=env_bool("CONFLUENCE_AUTO_PUBLISH", False, env),
    )


def reports_from_env(env: dict[str, str]) -> ReportsSettings:
    return ReportsSettings(directory=env.get("AILOG_REPORTS_DIR") or "reports")


def analysis_from_env(env: dict[str, str]) -> AnalysisSettings:
    def path(name: str) -> Path | None:
        raw = env.get(name)
        if not raw:
            return None
        p = Path(raw).expanduser()
        if not p.is_file():
            raise ConfigError(f"{name} points to {raw!r}, which is not a readable file")
        return p

    return AnalysisSettings(
        window_minutes=env_int("AILOG_WINDOW_MINUTES", 15, env),
        ingest_lag_minutes=env_int("AILOG_INGEST_LAG_MINUTES", 5, env),
        max_catchup_windows=env_int("AILOG_MAX_CATCHUP_WINDOWS", 96, env),
        fingerprint_rules=path("AILOG_FINGERPRINT_RULES"),
        detection_rules=path("AILOG_DETECTION_RULES"),
        retention_days=env_int("AILOG_RETENTION_DAYS", 90, env),
        scrub_patterns=path("AILOG_SCRUB_PATTERNS"),
        scrub_defaults=env_bool("AILOG_SCRUB_DEFAULTS", True, env),
        pushgateway_url=env.get("AILOG_PUSHGATEWAY_URL") or None,
        live_alert_minutes=env_int("AILOG_LIVE_ALERT_MINUTES", 120, env),
        lookback_windows=env_int("AILOG_LOOKBACK_WINDOWS", 2, env),
        incomplete_wait_minutes=env_int("AILOG_INCOMPLETE_WAIT_MINUTES", 15, env),
        recovered_messages=env_bool("AILOG_RECOVERED_MESSAGES", True, env),
        read_ahead=env_bool("AILOG_READ_AHEAD", True, env),
    )


def load_settings(env: dict[str, str] | None = None, *, use_blocks: bool | None = None) -> Settings:
    """Read the whole configuration. Blocks win over environment variables when they exist."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("AILOG_HOME") or "~/.ailog").expanduser()
    sections = {
        "database": database_from_env(env),
        "elasticsearch": elasticsearch_from_env(env),
        "teams": teams_from_env(env),
        "confluence": confluence_from_env(env),
        "reports": reports_from_env(env),
    }
    sources = {name: "env" for name in sections}
    if use_blocks is None:
        use_blocks = bool(env.get("PREFECT_API_URL")) and env_bool("AILOG_USE_BLOCKS", True, env)
    if use_blocks:
        from blocks.documents import settings_from_blocks

        for name, (value, source) in settings_from_blocks(env).items():
            sections[name] = value
            sources[name] = source
    settings = Settings(home=home, analysis=analysis_from_env(env), sources=sources, **sections)
    register_settings(settings)  # every configured secret, from env or blocks, is masked from now on
    return settings
