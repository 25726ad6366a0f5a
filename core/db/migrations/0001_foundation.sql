-- Foundation schema. Later changes come as new numbered files; never edit an applied one.
-- All timestamps are timestamptz in UTC.

-- Runs of the flows (backfill, regular, publish) and what they did.
CREATE TABLE runs (
    run_id        text PRIMARY KEY,              -- Prefect flow-run id or a generated uuid
    flow          text NOT NULL,                 -- backfill | regular | publish | demo
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    status        text NOT NULL DEFAULT 'running', -- running | completed | failed
    params        jsonb NOT NULL DEFAULT '{}',
    summary       jsonb NOT NULL DEFAULT '{}',
    error         text
);
CREATE INDEX runs_flow_started ON runs (flow, started_at DESC);

-- Watermarks: the end of the last window a job has fully processed.
CREATE TABLE watermarks (
    name          text PRIMARY KEY,              -- e.g. 'regular'
    value         timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    run_id        text
);

-- Problems (the known-errors registry): one row per distinct error, id stable forever.
CREATE TABLE problems (
    problem_id      text PRIMARY KEY,
    template        text NOT NULL,
    error_type      text,
    apps            text[] NOT NULL DEFAULT '{}',
    first_seen      timestamptz,
    last_seen       timestamptz,
    count_total     bigint NOT NULL DEFAULT 0,
    status          text NOT NULL DEFAULT 'new',   -- new | ongoing | resolved | regressed
    severity        text,
    sample_message  text,
    sample_trace_id text,
    -- edits by people: survive every run
    title           text,
    note            text,
    ticket          text,
    muted           boolean NOT NULL DEFAULT false,
    muted_by        text,
    muted_reason    text,
    muted_at        timestamptz,
    acknowledged_by text,
    acknowledged_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Earlier ids of a problem (a template that generalised into another keeps resolving).
CREATE TABLE problem_aliases (
    alias_id      text PRIMARY KEY,
    problem_id    text NOT NULL REFERENCES problems (problem_id),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Template store of the grouping engine: every template key ever seen → its problem.
CREATE TABLE grouping_templates (
    template_key  text PRIMARY KEY,              -- canonical fingerprint of a template
    problem_id    text NOT NULL,
    template      text NOT NULL,
    token_count   integer,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX grouping_templates_problem ON grouping_templates (problem_id);

-- Processed windows: one row per [window_start, window_end), replaced on re-run.
CREATE TABLE windows (
    window_start  timestamptz PRIMARY KEY,
    window_end    timestamptz NOT NULL,
    events_read   bigint NOT NULL DEFAULT 0,
    bad_documents jsonb NOT NULL DEFAULT '{}',
    problems      integer NOT NULL DEFAULT 0,
    data_hash     text,
    run_id        text,
    processed_at  timestamptz NOT NULL DEFAULT now()
);

-- Per-minute counts per problem and application inside a window.
CREATE TABLE window_counts (
    window_start  timestamptz NOT NULL,
    minute        timestamptz NOT NULL,
    problem_id    text NOT NULL,
    app           text NOT NULL,
    count         integer NOT NULL,
    PRIMARY KEY (window_start, problem_id, app, minute)
);
CREATE INDEX window_counts_problem_minute ON window_counts (problem_id, app, minute);
CREATE INDEX window_counts_minute ON window_counts (minute);

-- Field values behind the counts (pod, host, version, namespace, error_type), to explain peaks.
CREATE TABLE window_dimensions (
    window_start  timestamptz NOT NULL,
    problem_id    text NOT NULL,
    app           text NOT NULL,
    dimension     text NOT NULL,
    value         text NOT NULL,
    count         integer NOT NULL,
    PRIMARY KEY (window_start, problem_id, app, dimension, value)
);

-- Per window and problem: a sample, the trace id and first/last timestamps.
CREATE TABLE window_problem_samples (
    window_start  timestamptz NOT NULL,
    problem_id    text NOT NULL,
    first_ts      timestamptz NOT NULL,
    last_ts       timestamptz NOT NULL,
    sample_message text,
    sample_trace_id text,
    error_type    text,
    PRIMARY KEY (window_start, problem_id)
);

-- Recurring peaks, learned (or curated): schedule, typical size, how often seen.
CREATE TABLE known_peaks (
    known_peak_id  text PRIMARY KEY,
    problem_id     text NOT NULL,
    app            text NOT NULL,
    minute_of_day  integer NOT NULL,            -- start of the usual peak, minutes after 00:00 UTC
    weekday        integer,                     -- 0=Monday..6, NULL = every day
    tolerance_min  integer NOT NULL DEFAULT 30,
    typical_count  double precision NOT NULL,
    max_count      integer NOT NULL DEFAULT 0,
    times_seen     integer NOT NULL DEFAULT 0,
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL,
    source         text NOT NULL DEFAULT 'learned', -- learned | curated
    note           text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Incidents: what one alert is about (a peak or a cascade), for one-alert-per-incident.
CREATE TABLE incidents (
    incident_id     text PRIMARY KEY,
    problem_id      text,                         -- NULL for a cascade
    app             text,
    kind            text NOT NULL,
    opened_at       timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    closed_at       timestamptz,
    last_alert_at   timestamptz,
    last_alert_count bigint NOT NULL DEFAULT 0,    -- events of the incident when last alerted
    last_alert_rate double precision NOT NULL DEFAULT 0,
    events_total    bigint NOT NULL DEFAULT 0,
    alerts_sent     integer NOT NULL DEFAULT 0,
    severity        text,
    members         jsonb NOT NULL DEFAULT '[]'    -- cascades: [{"problem_id","app"}]
);

-- Every detected peak (the peaks registry).
CREATE TABLE peaks (
    peak_id        text PRIMARY KEY,              -- deterministic: re-running a window replaces it
    window_start   timestamptz NOT NULL,
    problem_id     text NOT NULL,
    app            text NOT NULL,
    kind           text NOT NULL,                 -- spike | burst | new | regression | cascade
    start_ts       timestamptz NOT NULL,
    end_ts         timestamptz NOT NULL,
    count          integer NOT NULL,
    baseline       double precision NOT NULL,
    ratio          double precision NOT NULL,
    severity       text NOT NULL,
    known          boolean NOT NULL DEFAULT false,
    known_peak_id  text,
    alerted        boolean NOT NULL DEFAULT false,
    incident_id    text,
    explanation    jsonb NOT NULL DEFAULT '[]',
    reasons        jsonb NOT NULL DEFAULT '[]',
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX peaks_window ON peaks (window_start);
CREATE INDEX peaks_problem ON peaks (problem_id, app, start_ts);

-- Notification outbox: written in the same transaction as the data, delivered afterwards.
CREATE TABLE outbox (
    id               bigserial PRIMARY KEY,
    idempotency_key  text NOT NULL UNIQUE,
    channel          text NOT NULL,               -- teams | confluence
    kind             text NOT NULL,               -- alert | daily_report | backfill_completed | backfill_failed | ...
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending', -- pending | sending | sent | dead
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX outbox_pending ON outbox (status, next_attempt_at) WHERE status IN ('pending', 'sending');

-- What was last published where (Confluence pages, reports) with the data hash, to skip unchanged data.
CREATE TABLE publications (
    target         text PRIMARY KEY,              -- e.g. 'confluence:page:123'
    data_hash      text NOT NULL,
    published_at   timestamptz NOT NULL DEFAULT now(),
    detail         jsonb NOT NULL DEFAULT '{}'
);
