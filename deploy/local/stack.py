"""A local stand-in for production, to run the deployments exactly as Kubernetes would (docs/DEPLOYMENT.md).

- a real PostgreSQL on 127.0.0.1 over TCP with password authentication (not the embedded default);
- a real Prefect server (`prefect server start`) and a real `prefect worker`;
- a *process* work pool named like the Kubernetes one (`ailog-kubernetes`): its job command runs
  `prefect flow-run execute` — the command the Kubernetes worker puts in the Job — inside `deploy/local/pod.sh`,
  a bubblewrap sandbox with the Job's constraints (read-only root, only /tmp writable, uid 10001, the code read-only
  at /opt/ailog, the Dockerfile's ENV and the Job's variables);
- the deployments from `prefect.yaml` with `prefect --no-prompt deploy --all`, nothing changed but the pool's type.

The test `tests/test_deployed_sandbox.py` drives it; an operator can run it by hand:
`python deploy/local/stack.py` brings everything up with local Teams/Confluence/Elasticsearch stand-ins and
prints the `prefect deployment run …` lines to try (Ctrl-C stops everything).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
POOL = "ailog-kubernetes"  # the name prefect.yaml uses: only the pool's type differs from production
APP_USER, APP_PASSWORD = "ailog", "app-" + uuid.uuid4().hex[:12]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dockerfile_env(path: Path = ROOT / "Dockerfile") -> dict[str, str]:
    """The image's ENV, read from the Dockerfile itself so the sandbox cannot drift from it."""
    text = path.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().startswith("ENV "):
            for item in shlex.split(line.strip()[4:]):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def copy_code(dest: Path) -> Path:
    """What the image holds under /opt/ailog: the tracked files of the repository, and the compiled grouping
    modules next to their sources (the Dockerfile copies them there from its build)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    built = [path.relative_to(ROOT).as_posix() for path in (ROOT / "tasks" / "grouping").glob("*.so")]
    for name in [*(f.decode() for f in filter(None, files)), *built]:
        src = ROOT / name
        if src.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


@dataclass
class Stack:
    """Everything started here is stopped by `stop()` (also on errors: use it as a context manager)."""

    job_env: dict[str, str] = field(default_factory=dict)  # the Job's Secret/ConfigMap stand-in (DB_*, TEAMS_*, …)
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ailog-stack-", dir="/var/tmp")))
    api_url: str = ""
    processes: list[subprocess.Popen] = field(default_factory=list)
    pg: object = None

    # -- services ---------------------------------------------------------------------------------------------------
    def start_postgres(self) -> dict[str, str]:
        """A PostgreSQL server on 127.0.0.1 that checks passwords; the app user has data privileges only."""
        sys.path.insert(0, str(ROOT))
        import psycopg

        from tests.fakes.password_postgres import SUPERPASS, SUPERUSER, start_password_server

        self.pg = start_password_server()
        with psycopg.connect(host="127.0.0.1", port=self.pg.port, user=SUPERUSER, password=SUPERPASS,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{APP_PASSWORD}'")
            conn.execute("CREATE DATABASE ailog")
        db_env = {"DB_HOST": "127.0.0.1", "DB_PORT": str(self.pg.port), "DB_NAME": "ailog", "DB_USER": APP_USER,
                  "DB_PASSWORD": APP_PASSWORD, "DB_DDL_USER": SUPERUSER, "DB_DDL_PASSWORD": SUPERPASS}
        self.job_env.update(db_env)
        return db_env

    def start_prefect_server(self) -> str:
        port = free_port()
        env = {**self._clean_env(), "PREFECT_HOME": str(self.base / "prefect-server"),
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_UI_ENABLED": "false",
               "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5"}
        log = open(self.base / "prefect-server.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes.append(subprocess.Popen([self._bin("prefect"), "server", "start", "--host", "127.0.0.1",
                                                "--port", str(port)], env=env, stdout=log, stderr=log))
        self.api_url = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return self.api_url
            except httpx.HTTPError:
                pass
            if self.processes[-1].poll() is not None:
                break
            time.sleep(1)
        raise RuntimeError(f"the Prefect server did not start; see {self.base / 'prefect-server.log'}")

    # -- the image and the work pool standing in for Kubernetes --------------------------------------------------------
    def build_image(self) -> Path:
        """The stand-in for `docker build`: the code the image holds under /opt/ailog (DEPLOYMENT.md step 1)."""
        return copy_code(self.base / "code")

    def create_pool(self) -> None:
        """A process pool whose job command is the Job's command inside the pod sandbox, with the Job's env."""
        code = self.base / "code"
        template = json.loads(self.prefect("work-pool", "get-default-base-job-template", "--type", "process").stdout)
        pod = [str(ROOT / "deploy" / "local" / "pod.sh"), self._bin("prefect"), "flow-run", "execute"]
        props = template["variables"]["properties"]
        props["command"]["default"] = shlex.join(pod)
        venv = str(Path(sys.prefix))
        props["env"]["default"] = {**dockerfile_env(), **self.job_env, "AILOG_POD_CODE": str(code),
                                   "AILOG_POD_KEEP_PATHS": " ".join({venv, str(ROOT)})}
        path = self.base / "process-job-template.json"
        path.write_text(json.dumps(template))
        self.prefect("work-pool", "create", POOL, "--type", "process", "--base-job-template", str(path), "--overwrite")

    def deploy(self, image: str = "registry.example.com/ai-log-analyzer:test") -> str:
        """`prefect --no-prompt deploy --all` from the repository root, as docs/DEPLOYMENT.md says."""
        return self.prefect("--no-prompt", "deploy", "--all", extra_env={"AILOG_IMAGE": image}).stdout

    def start_worker(self) -> None:
        env = {**self._clean_env(), "PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(self.base / "worker"),
               "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
        log = open(self.base / "worker.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes.append(subprocess.Popen([self._bin("prefect"), "worker", "start", "--pool", POOL,
                                                "--type", "process"], env=env, cwd=self.base, stdout=log, stderr=log))

    # -- commands as people type them ---------------------------------------------------------------------------------
    def prefect(self, *args: str, extra_env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        env = {**self._clean_env(), "PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(self.base / "cli"),
               **(extra_env or {})}
        done = subprocess.run([self._bin("prefect"), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=600)
        if check and done.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def run_deployment(self, name: str, *params: str) -> str:
        """`prefect deployment run NAME --param k=v …`; returns the flow run id."""
        args = ["deployment", "run", name]
        for p in params:
            args += ["--param", p]
        out = self.prefect(*args).stdout
        for line in out.splitlines():
            if "UUID:" in line:
                return line.split("UUID:")[1].strip()
        raise RuntimeError(f"no flow run id in: {out}")

    def pod(self, *command: str) -> subprocess.CompletedProcess:
        """Run a command in the pod sandbox with the Job's environment (e.g. `ailog db migrate`)."""
        env = {**self._clean_env(), **dockerfile_env(), **self.job_env,
               "AILOG_POD_CODE": str(self.base / "code"), "AILOG_POD_KEEP_PATHS": f"{sys.prefix} {ROOT}"}
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # the image has `ailog` on its PATH
        return subprocess.run([str(ROOT / "deploy" / "local" / "pod.sh"), *command], env=env, capture_output=True,
                              text=True, timeout=600)

    def flow_run(self, run_id: str) -> dict:
        return httpx.get(f"{self.api_url}/flow_runs/{run_id}", timeout=10).json()

    def flow_runs(self, deployment: str) -> list[dict]:
        flow_name, dep_name = deployment.split("/")
        dep = httpx.get(f"{self.api_url}/deployments/name/{flow_name}/{dep_name}", timeout=10).json()
        body = {"deployments": {"id": {"any_": [dep["id"]]}}, "sort": "EXPECTED_START_TIME_ASC"}
        return httpx.post(f"{self.api_url}/flow_runs/filter", json=body, timeout=10).json()

    def wait(self, run_id: str, timeout: float = 600) -> dict:
        """Wait for a final state; returns the flow run (its `state.type` says how it ended)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.flow_run(run_id)
            if run["state"]["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
                return run
            time.sleep(2)
        raise TimeoutError(f"flow run {run_id} did not finish in {timeout} s: {self.flow_run(run_id)['state']}")

    def logs(self, run_id: str) -> str:
        body = {"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_ASC", "limit": 200}
        rows = httpx.post(f"{self.api_url}/logs/filter", json=body, timeout=10).json()
        return "\n".join(f"{r['level']} {r['message']}" for r in rows)

    # -- plumbing -----------------------------------------------------------------------------------------------------
    @staticmethod
    def _bin(name: str) -> str:
        return str(Path(sys.executable).parent / name)

    @staticmethod
    def _clean_env() -> dict[str, str]:
        """The caller's environment without its own Prefect/ailog settings (a test harness may have set some)."""
        return {k: v for k, v in os.environ.items()
                if not k.startswith(("PREFECT_", "DB_", "ES_", "TEAMS_", "CONFLUENCE_", "AILOG_"))}

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.pg is not None:
            self.pg.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> int:  # pragma: no cover - the operator's way in; the test covers the same steps
    sys.path.insert(0, str(ROOT))
    from datetime import UTC, datetime, timedelta

    from ailog.simulation import generate
    from tests.fakes.confluence_server import FakeConfluence
    from tests.fakes.elasticsearch_server import FakeElasticsearch
    from tests.fakes.teams_server import FakeTeams

    today = datetime.now(UTC).date()
    with tempfile.TemporaryDirectory() as tmp:
        data = generate(today - timedelta(days=2), 3, seed=5, out_dir=Path(tmp), apps=4)
        docs = [json.loads(line) for f in data.files for line in open(f)]  # noqa: SIM115
    with FakeElasticsearch(docs) as es, FakeTeams("workflow") as teams, FakeConfluence() as wiki, Stack() as stack:
        for page in ("1", "2", "3"):
            wiki.add_page(page, f"page {page}")
        stack.job_env.update({"ES_HOST": es.url, "TEAMS_WEBHOOK_URL": teams.url + "/workflows/x?sig=local",
                              "CONFLUENCE_URL": wiki.url, "CONFLUENCE_USERNAME": "svc", "CONFLUENCE_PASSWORD": "pw",
                              "CONFLUENCE_DAILY_REPORT_PAGE_ID": "1", "CONFLUENCE_KNOWN_ERRORS_PAGE_ID": "2",
                              "CONFLUENCE_KNOWN_PEAKS_PAGE_ID": "3"})
        stack.build_image()
        stack.start_postgres()
        print(stack.pod("ailog", "db", "migrate").stdout)
        stack.start_prefect_server()
        stack.create_pool()
        stack.deploy()
        stack.start_worker()
        print(f"PREFECT_API_URL={stack.api_url}\nTry:\n"
              f"  prefect deployment run 'backfill/backfill-rerun' --param day={today - timedelta(days=1)}\n"
              f"  prefect deployment run 'publish/publish' --param day={today - timedelta(days=1)}\n"
              "Ctrl-C stops everything.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
