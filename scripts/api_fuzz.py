#!/usr/bin/env python3
"""`make api-fuzz`: schemathesis over every operation of /api/schema/, against a real daphne.

1. the embedded PostgreSQL and Redis of `make test` (scripts/stack.py; DATABASE_URL / REDIS_URL replace them);
2. a throwaway database `evp_fuzz_<pid>`, migrated and seeded with the demo data (`manage.py seed_demo`);
3. per demo tenant, a daphne on a free 127.0.0.1 port with the test settings (DEBUG off, as in production) and
   `st run` with that tenant's API key against it (config: scripts/schemathesis.toml; hooks and the
   error-shape check: scripts/api_fuzz_hooks.py); both tenants side by side, on the same database;
4. daphne stopped, the database dropped, the servers this run started stopped.

Fails (exit 1) on any 5xx, any response that breaks its schema or content type, any status an operation does
not document, and any error body that is not JSON in the one error shape. Schemathesis prints each failure
with the operation, the status, the check and a curl line to reproduce it (against `make run`); the server's
tracebacks are in `.data/fuzz/daphne-<tenant>.log` and their last lines are printed when the run fails.

Extra arguments go to every `st run` (e.g. `make api-fuzz API_FUZZ_ARGS="--include-path-regex driver"`).
`API_FUZZ_SEED` changes the seed (default fixed, so a run is repeatable; `random` for a fresh one).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests
from stack import DATA, ROOT, Stack, free_port, log, manage, venv_python

DEMO_KEYS = {
    "voltnet": "evp_voltnetdemo_demo-key-for-voltnet-not-secret",
    "fjord": "evp_fjorddemo_demo-key-for-fjord-not-secret",
}
DEFAULT_SEED = "20261204"
FUZZ_DIR = DATA / "fuzz"
BIN = Path(venv_python()).parent


@dataclass
class KeyRun:
    tenant: str
    returncode: int
    seconds: float
    operations: str
    cases: str


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{dbname}", parts.query, parts.fragment))


def create_database(server_url: str, dbname: str) -> None:
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'evp\\_fuzz\\_%'").fetchall():
            match = re.match(r"^evp_fuzz_(\d+)$", name)
            if match and not Path(f"/proc/{match.group(1)}").exists():  # left by a killed run
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    with psycopg.connect(with_database(server_url, dbname), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        conn.execute("CREATE EXTENSION IF NOT EXISTS cube")


def drop_database(server_url: str, dbname: str) -> None:
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn,
    ):
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def start_daphne(env: dict[str, str], port: int, tenant: str) -> subprocess.Popen[bytes]:
    FUZZ_DIR.mkdir(parents=True, exist_ok=True)
    logfile = (FUZZ_DIR / f"daphne-{tenant}.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "evplatform.asgi:application"],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=logfile,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180  # the whole project is imported: slow on a busy machine
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"daphne exited with {proc.returncode}; see {FUZZ_DIR / f'daphne-{tenant}.log'}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"daphne did not answer /healthz within 180 s; see {FUZZ_DIR / f'daphne-{tenant}.log'}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def own_access(base_url: str, key: str) -> tuple[int, int]:
    """The id of the fuzzing key and of its tenant, so the hooks never let the fuzz write to either."""
    prefix = key.split("_")[1]
    headers = {"Authorization": f"Api-Key {key}"}
    response = requests.get(f"{base_url}/api/v1/api-keys/?page_size=500", headers=headers, timeout=30)
    if response.status_code != 200:
        raise SystemExit(f"the demo key {prefix} does not work: {response.status_code} {response.text[:300]}")
    for row in response.json()["results"]:
        if row.get("prefix") == prefix:
            return int(row["id"]), int(row["tenant"])
    raise SystemExit(f"GET /api/v1/api-keys/ does not list the fuzzing key {prefix}")


def start_schemathesis(
    base_url: str, tenant: str, key: str, seed: str, extra: list[str], env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Path, float]:
    key_id, tenant_id = own_access(base_url, key)
    log(f"schemathesis with {tenant}'s key (key {key_id}, tenant {tenant_id}) against {base_url}, seed {seed}")
    command = [
        str(BIN / "st"),
        "--config-file",
        str(ROOT / "scripts" / "schemathesis.toml"),
        "--no-color",
        "run",
        f"{base_url}/api/schema/",
        "--header",
        f"Authorization: Api-Key {key}",
        "--seed",
        seed,
        *extra,
    ]
    run_env = {
        **env,
        "SCHEMATHESIS_HOOKS": str(ROOT / "scripts" / "api_fuzz_hooks.py"),
        "EVP_FUZZ_API_KEY_ID": str(key_id),
        "EVP_FUZZ_TENANT_ID": str(tenant_id),
    }
    output = FUZZ_DIR / f"schemathesis-{tenant}.log"
    workdir = FUZZ_DIR / tenant
    workdir.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as sink:
        proc = subprocess.Popen(command, env=run_env, cwd=workdir, stdout=sink, stderr=subprocess.STDOUT)
    return proc, output, time.monotonic()


def finish_schemathesis(tenant: str, proc: subprocess.Popen[bytes], output_path: Path, started: float) -> KeyRun:
    returncode = proc.wait()
    seconds = time.monotonic() - started
    output = output_path.read_text(errors="replace")
    print(f"\n[api-fuzz] ===== {tenant} =====\n{output}", flush=True)
    tested = re.search(r"Tested:\s+(\d+)", output)
    selected = re.search(r"Selected:\s+(\d+/\d+)", output)
    cases = re.search(r"Test cases:\s*\n\s*(.+)", output)
    return KeyRun(
        tenant=tenant,
        returncode=returncode,
        seconds=seconds,
        operations=f"{tested.group(1) if tested else '?'} tested of {selected.group(1) if selected else '?'}",
        cases=cases.group(1).strip() if cases else "?",
    )


def server_tracebacks(tenant: str, limit: int = 80) -> str:
    path = FUZZ_DIR / f"daphne-{tenant}.log"
    if not path.exists():
        return ""
    lines = path.read_text(errors="replace").splitlines()
    picked = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
    out: list[str] = []
    for start in picked[-5:]:
        block = [lines[start]]
        for line in lines[start + 1 :]:
            block.append(line)
            if not line.startswith((" ", "\t", "Traceback", "During handling", "The above")) and line.strip():
                break
        out += block
    return "\n".join(out[-limit:])


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)  # `kill` cleans up like Ctrl-C: daphne, database, servers
    started = time.monotonic()
    seed = os.environ.get("API_FUZZ_SEED", DEFAULT_SEED)
    if seed == "random":
        seed = str(secrets.randbelow(2**63))
    stack = Stack(purpose="fuzz")
    env = {**os.environ, **stack.up(), "DJANGO_SETTINGS_MODULE": "evplatform.settings.test", "PYTHONUNBUFFERED": "1"}
    server_url = env["DATABASE_URL"]
    dbname = f"evp_fuzz_{os.getpid()}"
    daphnes: list[subprocess.Popen[bytes]] = []
    fuzzers: list[subprocess.Popen[bytes]] = []
    runs: list[KeyRun] = []
    try:
        create_database(server_url, dbname)
        env["DATABASE_URL"] = with_database(server_url, dbname)
        log(f"migrating and seeding the demo data into {dbname}")
        manage(env, "migrate", "--no-input", "-v", "0")
        subprocess.run(
            [venv_python(), str(ROOT / "manage.py"), "seed_demo"],
            check=True,
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        # one daphne and one schemathesis per tenant, side by side: each pair keeps about one core busy
        started_runs = []
        for tenant, key in DEMO_KEYS.items():
            port = free_port()
            daphnes.append(start_daphne(env, port, tenant))
            proc, output, began = start_schemathesis(f"http://127.0.0.1:{port}", tenant, key, seed, argv, env)
            fuzzers.append(proc)
            started_runs.append((tenant, proc, output, began))
        log(f"fuzzing ({', '.join(DEMO_KEYS)}); logs in {FUZZ_DIR}")
        for tenant, proc, output, began in started_runs:
            runs.append(finish_schemathesis(tenant, proc, output, began))
    finally:
        for proc in fuzzers:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        for daphne in daphnes:
            stop(daphne)
        drop_database(server_url, dbname)
        stack.down()
    print(f"\n[api-fuzz] summary (seed {seed}, {time.monotonic() - started:.0f} s in all)", flush=True)
    for run in runs:
        verdict = "passed" if run.returncode == 0 else f"FAILED (st exit {run.returncode})"
        print(f"[api-fuzz]   {run.tenant:<8} {verdict}: {run.operations} operations, {run.cases}, {run.seconds:.0f} s")
    failed = len(runs) != len(DEMO_KEYS) or any(run.returncode != 0 for run in runs)
    if failed:
        for tenant in DEMO_KEYS:
            tracebacks = server_tracebacks(tenant)
            if tracebacks:
                print(f"[api-fuzz] the server's last tracebacks (.data/fuzz/daphne-{tenant}.log):\n{tracebacks}")
        print(
            "[api-fuzz] FAILED: each failure above names its operation, status and check, with a curl line", flush=True
        )
        return 1
    print("[api-fuzz] passed", flush=True)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--":
        args = args[1:]
    sys.exit(main(args))
