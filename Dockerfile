# AI Log Analyzer: one image for the Prefect Kubernetes worker's jobs (`prefect flow-run execute`) and `ailog`.
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PREFECT_HOME=/tmp/prefect \
    AILOG_HOME=/tmp/ailog \
    AILOG_REPORTS_DIR=/tmp/ailog/reports \
    PREFECT_LOGGING_EXTRA_LOGGERS=ailog,tasks,flows

RUN groupadd --gid 10001 ailog && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin ailog

# WORKDIR must equal the pull step of prefect.yaml (set_working_directory: /opt/ailog).
WORKDIR /opt/ailog

# Dependencies first (cached layer): only the project metadata is needed to resolve them.
COPY pyproject.toml README.md ./
RUN mkdir -p ailog flows tasks blocks core \
    && touch ailog/__init__.py flows/__init__.py tasks/__init__.py blocks/__init__.py core/__init__.py \
    && pip install . \
    && pip uninstall -y ai-log-analyzer

# The code, then the package itself (no dependency changes: fast). setup.py compiles the per-event modules (grouping
# engine, document decoding, scrubbing, the events' encoding between processes) with mypyc: the C compiler is
# installed, used and removed in this one layer.
# The flows import the code from the working directory, so the compiled modules are copied next to their sources
# there too; the build fails if they are not the ones imported.
COPY setup.py ./
COPY ailog ./ailog
COPY flows ./flows
COPY tasks ./tasks
COPY blocks ./blocks
COPY core ./core
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-deps . \
    && (cd "$(python -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')" \
        && find tasks -name '*.so' -exec cp --parents {} /opt/ailog/ \;) \
    && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/* \
    && python -c "import tasks.grouping.engine as e, tasks.scrubbing as s, tasks.source.documents as d, \
tasks.event_rows as r; \
assert all(m.__file__.startswith('/opt/ailog/') and m.__file__.endswith('.so') for m in (e, s, d, r)), (e, s, d, r)" \
    && python -c "import flows.backfill, flows.regular, flows.publish"

USER 10001:10001
# No ENTRYPOINT: the worker sets the command (`prefect flow-run execute`); `ailog ...` works too.
CMD ["ailog", "--help"]
