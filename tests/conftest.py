"""Fixtures with real components: SQLite, PostgreSQL, an S3 server process, a studio server."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import free_port, need, stop, wait_for

PG_ADMIN_URL = os.environ.get("VSTUDIO_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """Blender scenes a render node renders: ``a.blend`` (``SCENE_FRAMES`` of the test
    module, default 6) and ``tex.blend``, which uses ``tex.png``."""
    from vstudio.jobtypes.samples import PNG_1PX, make_blend

    need("blender", "apt-get install blender")
    d = tmp_path_factory.mktemp("scenes")
    make_blend(d / "a.blend", frames=getattr(request.module, "SCENE_FRAMES", 6))
    (d / "tex.png").write_bytes(PNG_1PX)
    make_blend(d / "tex.blend", frames=2, texture=d / "tex.png")
    return d


@pytest.fixture(scope="session", autouse=True)
def _aws_env() -> None:
    # moto accepts any credentials; the same standard variables a user sets for AWS.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "vstudio-test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "vstudio-test-secret")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]

    def new_bucket(self) -> str:
        import boto3

        name = f"vst-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1").create_bucket(
            Bucket=name)
        return name

    def url(self, bucket: str, prefix: str = "studio") -> str:
        return f"s3://{bucket}/{prefix}?endpoint={self.endpoint}&region=us-east-1"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3-API server (moto_server) on loopback, spoken to over HTTP by boto3."""
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which(
        "moto_server")
    if not exe:
        pytest.fail("moto_server is missing: pip install 'moto[server]' (make test does)")
    port = free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"

    def up() -> bool:
        import urllib.request

        with urllib.request.urlopen(endpoint + "/", timeout=1) as r:
            return r.status == 200

    try:
        wait_for(up, 30, "moto_server to start")
        yield S3Server(endpoint, proc)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3_url(s3_server: S3Server) -> str:
    """A store URL in a fresh bucket of the loopback S3 server."""
    return s3_server.url(s3_server.new_bucket())


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the server at 127.0.0.1:5432."""
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except Exception as e:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({e}): "
                    "run 'bash scripts/ensure-postgres.sh' (make test does)")
    name = f"vst_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def studio_dir(tmp_path: Path) -> Path:
    """A fresh studio on SQLite and a local-folder store."""
    from vstudio.studio import init_studio

    root = tmp_path / "studio"
    init_studio(root, store_url=None, db_url=None).close()
    return root


@dataclass
class ServerProc:
    url: str
    studio: Path
    admin_token: str
    process: subprocess.Popen[bytes]

    def add_user(self, name: str, role: str = "artist") -> str:
        from vstudio.catalog import accounts
        from vstudio.studio import Studio

        studio = Studio.open(self.studio)
        try:
            return accounts.add_user(studio.engine, name, role)[1]
        finally:
            studio.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(studio: Path, log: Path) -> ServerProc:
    from vstudio.catalog import accounts
    from vstudio.studio import Studio

    s = Studio.open(studio)
    try:
        token = accounts.add_user(s.engine, f"admin{uuid.uuid4().hex[:6]}", "admin")[1]
    finally:
        s.close()
    port = free_port()
    out = open(log, "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen([sys.executable, "-m", "vstudio", "serve", "--studio", str(studio),
                             "--port", str(port)], stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        import httpx

        return httpx.get(url + "/openapi.json", timeout=2).status_code == 200

    try:
        wait_for(up, 30, "vstudio serve to start")
    except AssertionError:
        proc.kill()
        raise AssertionError(
            f"server did not start: {log.read_text(errors='replace')[-2000:]}") from None
    return ServerProc(url, studio, token, proc)


@pytest.fixture
def server(studio_dir: Path, tmp_path: Path) -> Iterator[ServerProc]:
    """``vstudio serve`` as a real process on a free loopback port, with an admin token."""
    srv = start_server(studio_dir, tmp_path / "server.log")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def worker(server: ServerProc, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``vstudio worker`` of ``server`` as a real process (its log: ``worker.log``), with
    its own cache folder: a render node sharing no disk with the test's project."""
    token = server.add_user("node1", "worker")
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "vstudio", "worker", "--server", server.url, "--token", token,
         "--slots", "2", "--poll", "1", "--cache", str(tmp_path / "wcache")],
        stdout=log, stderr=log)
    try:
        yield proc
    finally:
        stop(proc)
        log.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Leave nothing running: a server or worker a failed test left behind is ended here."""
    import psutil

    leftovers = psutil.Process().children(recursive=True)
    for proc in leftovers:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(leftovers, timeout=5)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
