#!/usr/bin/env bash
# Run one command the way the Kubernetes Job runs it (deploy/base-job-template.json + Dockerfile), with bubblewrap:
#   - read-only root filesystem; only a fresh, empty /tmp is writable (the Job's emptyDir), gone afterwards;
#   - uid/gid 10001, no capabilities, its own PID namespace;
#   - working directory /opt/ailog = a read-only copy of the code (AILOG_POD_CODE), as the image's WORKDIR;
#   - environment: only what a Job gets — the Dockerfile's ENV (passed in by the caller), PREFECT_* and PREFECT__*
#     from the worker, DB_*/ES_*/TEAMS_*/CONFLUENCE_*/AILOG_* (the Job's Secret and ConfigMap), PATH, PYTHON*; HOME
#     points nowhere writable.
# Used as the command of a local `process` work pool standing in for Kubernetes (deploy/local/stack.py), e.g.
#   deploy/local/pod.sh prefect flow-run execute
set -euo pipefail
code="${AILOG_POD_CODE:?set AILOG_POD_CODE to a copy of the code (what the image has under /opt/ailog)}"
command -v bwrap >/dev/null || { echo "pod.sh: bwrap not found: apt-get install bubblewrap" >&2; exit 2; }
scratch=$(mktemp -d "${AILOG_POD_SCRATCH_PARENT:-/var/tmp}/ailog-pod-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -m 700 "$scratch/runtime"

args=(--ro-bind / / --dev /dev --proc /proc --bind "$scratch" /tmp
      --tmpfs /opt --ro-bind "$code" /opt/ailog --remount-ro /opt
      --unshare-user --uid 10001 --gid 10001 --unshare-pid --die-with-parent --cap-drop ALL
      --chdir /opt/ailog --clearenv)
# A Python environment kept under the host's /tmp would be hidden by the pod's own /tmp: bind it again, read-only.
for keep in ${AILOG_POD_KEEP_PATHS:-}; do
  case "$keep" in /tmp/*) args+=(--ro-bind "$keep" "$keep") ;; esac
done
while IFS= read -r -d '' pair; do
  name=${pair%%=*}
  case "$name" in
    PATH|LANG|LC_ALL|PYTHON*|PREFECT_*|PREFECT__*|DB_*|ES_*|TEAMS_*|CONFLUENCE_*|AILOG_*)
      [[ "$name" == AILOG_POD_* ]] || args+=(--setenv "$name" "${pair#*=}") ;;
  esac
done < <(env -0)
args+=(--setenv HOME /nonexistent --setenv XDG_RUNTIME_DIR /tmp/runtime)
status=0
bwrap "${args[@]}" -- "$@" || status=$?
exit "$status"
