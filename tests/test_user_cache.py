"""`edgec cache`: what the user cache holds, and clearing it without breaking a run that uses it."""

import fcntl
import json
import os
import threading
import time

from click.testing import CliRunner

from edgec import user_cache
from edgec.cli import cli


def _age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then))


def _fill(root):
    """Two zoo models (and one being written), two kept exports with their locks, a stale and a
    fresh half-written export."""
    (root / "zoo").mkdir(parents=True)
    (root / "zoo" / "digits_cnn-v1.pt").write_bytes(b"x" * 1000)
    (root / "zoo" / "resnet20_digits-v1.pt").write_bytes(b"x" * 3000)
    (root / "zoo" / ".resnet56_digits-v1.pt.abc.tmp").write_bytes(b"x" * 10)
    exports = root / "exports"
    for key in ("a" * 32, "b" * 32):
        (exports / key).mkdir(parents=True)
        (exports / key / "baseline.onnx").write_bytes(b"o" * 500)
        (exports / key / "meta.json").write_text("{}")
        (exports / f"{key}.lock").touch()
    for name, age in ((".ccc.stale", 2 * 3600), (".ddd.fresh", 0)):
        (exports / name).mkdir()
        (exports / name / "baseline.onnx").write_bytes(b"o" * 100)
        _age(exports / name, age)
    return exports


def test_survey_counts_complete_entries_and_all_bytes(tmp_path):
    _fill(tmp_path)
    zoo, exports = user_cache.survey(tmp_path)
    assert (zoo.name, zoo.entries, zoo.bytes) == ("zoo", 2, 4010)
    assert (exports.entries, exports.bytes) == (2, 2 * 502 + 200)
    empty = user_cache.survey(tmp_path / "nowhere")
    assert [(s.entries, s.bytes) for s in empty] == [(0, 0), (0, 0)]


def test_clear_exports_keeps_locks_and_a_store_in_progress(tmp_path):
    exports = _fill(tmp_path)
    before, after = user_cache.clear("exports", tmp_path)
    assert before.entries == 2 and after.entries == 0
    left = sorted(p.name for p in exports.iterdir())
    assert left == [".ddd.fresh", "a" * 32 + ".lock", "b" * 32 + ".lock"]
    assert after.bytes == 100  # the fresh store's file: a run may be writing it now
    assert user_cache.survey(tmp_path)[0].entries == 2  # the zoo untouched


def test_clear_waits_for_a_run_that_holds_the_export(tmp_path):
    exports = _fill(tmp_path)
    key = "a" * 32
    with open(exports / f"{key}.lock", "a+") as lock:  # as a run reusing the export holds it
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        clearing = threading.Thread(target=user_cache.clear, args=("exports", tmp_path))
        clearing.start()
        clearing.join(0.3)
        assert clearing.is_alive() and (exports / key / "baseline.onnx").is_file()
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    clearing.join(30)
    assert not clearing.is_alive() and not (exports / key).exists()


def test_cli_shows_and_clears(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEC_CACHE_DIR", str(tmp_path))
    _fill(tmp_path)
    shown = CliRunner().invoke(cli, ["cache"])
    assert shown.exit_code == 0, shown.output
    assert str(tmp_path) in shown.output and "2 trained zoo models" in shown.output
    rows = json.loads(CliRunner().invoke(cli, ["cache", "--json"]).output)
    assert {r["section"]: r["entries"] for r in rows} == {"zoo": 2, "exports": 2}
    cleared = CliRunner().invoke(cli, ["cache", "--clear", "all"])
    assert cleared.exit_code == 0, cleared.output
    assert "removed 2 trained zoo models" in cleared.output
    assert "removed 2 kept exports" in cleared.output and "could not be removed" in cleared.output
    assert [p.name for p in (tmp_path / "zoo").iterdir()] == [".resnet56_digits-v1.pt.abc.tmp"]
    _age(tmp_path / "zoo" / ".resnet56_digits-v1.pt.abc.tmp", 2 * 3600)  # its training was killed
    user_cache.clear("zoo", tmp_path)
    assert not list((tmp_path / "zoo").iterdir())
    bad = CliRunner().invoke(cli, ["cache", "--clear", "everything"])
    assert bad.exit_code == 2 and "'everything' is not one of" in bad.output


def test_a_file_where_the_cache_should_be_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEC_CACHE_DIR", str(tmp_path / "afile"))
    (tmp_path / "afile").write_text("")
    shown = CliRunner().invoke(cli, ["cache"])
    assert shown.exit_code == 0 and "is a file, not a folder" in shown.output


def test_cli_clear_with_json_says_what_was_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEC_CACHE_DIR", str(tmp_path))
    _fill(tmp_path)
    result = CliRunner().invoke(cli, ["cache", "--clear", "exports", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert (row["section"], row["removed_entries"], row["entries"]) == ("exports", 2, 0)
    assert row["removed_bytes"] == 2 * 502 + 100 and row["bytes"] == 100  # the fresh store stays
