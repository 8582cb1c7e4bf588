"""kill -9 of ``vstudio commit`` at random moments: whole revision or none, store intact."""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path

from tests.helpers import VSTUDIO, cli, cli_json

TRIALS = 20


def _write_trial(wc: Path, n: int) -> dict[str, bytes]:
    files = {f"t/f{i:02d}.txt": f"trial {n} file {i}\n".encode() * (i + 1) for i in range(20)}
    files["t/big.bin"] = random.randbytes(600_000)
    files[f"new/only{n}.txt"] = b"x" * n
    for rel, data in files.items():
        (wc / rel).parent.mkdir(parents=True, exist_ok=True)
        (wc / rel).write_bytes(data)
    return files


def test_commit_killed_at_random_moments(tmp_path: Path) -> None:
    from vstudio.cli.repos import open_wc
    from vstudio.repo import open_reader
    from vstudio.repo.trees import oid_of
    from vstudio.repo.wccommit import commit
    from vstudio.repo.wcupdate import update
    from vstudio.studio import Studio

    random.seed(4)
    root = tmp_path / "studio"
    cli("init", str(root))
    cli("project", "create", "film", "--studio", str(root))
    wc = tmp_path / "wc"
    cli("checkout", f"{root}/film", str(wc))
    _write_trial(wc, 0)
    started = time.monotonic()
    assert cli_json("commit", "-m", "base", cwd=wc)["rev"] == 1
    full = time.monotonic() - started
    studio = Studio.open(root)
    reader = open_reader(studio)
    outcomes = {"whole": 0, "none": 0}
    # Spread the kills from the middle of start-up to past the end of a normal commit.
    delays = [full * (0.4 + 1.2 * i / (TRIALS - 1)) for i in range(TRIALS)]
    random.shuffle(delays)
    try:
        for n in range(1, TRIALS + 1):
            before = reader.head("film")
            before_tree = reader.tree("film", before)
            files = _write_trial(wc, n)
            proc = subprocess.Popen([*VSTUDIO, "commit", "-m", f"trial {n}"], cwd=wc,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delays[n - 1])
            proc.kill()
            proc.wait()
            head = reader.head("film")
            assert head in (before, before + 1)
            tree = reader.tree("film", head)
            if head == before:
                assert tree == before_tree
                outcomes["none"] += 1
            else:
                outcomes["whole"] += 1
                for rel, data in files.items():
                    assert tree[rel].oid == oid_of(data), (n, rel)
                    assert reader.read(tree[rel].oid, 0, len(data) + 1) == data
                assert reader.log("film", limit=1)[0].message == f"trial {n}"
            # The working copy recovers either way: update adopts what was committed.
            w = open_wc(str(wc))
            try:
                update(w)
                done = commit(w, f"after trial {n}")
            finally:
                w.backend.close()
            if head == before:
                assert done is not None and done[0] == before + 1
            else:
                assert done is None  # nothing left to commit
        check = cli("store", "check", "--studio", str(root))
        assert check.returncode == 0
    finally:
        studio.close()
    # Kills must have hit both sides of the commit point for the test to mean much.
    assert outcomes["whole"] >= 1 and outcomes["none"] >= 1
    print("kill outcomes:", outcomes, "full commit seconds:", round(full, 2))
    assert os.path.exists(wc / ".vstudio" / "index")
