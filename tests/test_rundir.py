import os
import re
import shutil
from pathlib import Path

import pytest

from edgec.errors import UsageError
from edgec.rundir import RunFolder


def test_run_appears_only_when_finished(tmp_path):
    target = tmp_path / "runs" / "exp"
    with RunFolder(target, force=False) as folder:
        (folder.path / "a.txt").write_text("x")
        assert not target.exists()  # work in progress is under a temporary name
        assert folder.path.name == "exp.partial"
    assert (target / "a.txt").read_text() == "x"
    assert [p.name for p in target.parent.iterdir()] == ["exp"]
    assert not (target / ".lock").exists()


def test_existing_run_is_refused_without_force(tmp_path):
    target = tmp_path / "exp"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(UsageError, match="--force"):
        RunFolder(target, force=False)
    assert (target / "old.txt").exists()


def test_force_replaces_only_at_the_end(tmp_path):
    target = tmp_path / "exp"
    with RunFolder(target, force=False) as folder:
        (folder.path / "old.txt").write_text("old")
    with RunFolder(target, force=True) as folder:
        (folder.path / "new.txt").write_text("new")
        assert (target / "old.txt").exists()  # the old run survives until the new one is done
    assert (target / "new.txt").exists() and not (target / "old.txt").exists()


def test_output_path_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(UsageError, match="is a file"):
        RunFolder(tmp_path / "f", force=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_parent(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(UsageError, match="not writable"):
            RunFolder(ro / "exp", force=False)
    finally:
        ro.chmod(0o700)


def test_failure_leaves_the_work_under_the_partial_name(tmp_path):
    target = tmp_path / "exp"
    with pytest.raises(RuntimeError), RunFolder(target, force=False) as folder:
        (folder.path / "baseline.onnx").write_text("done")
        raise RuntimeError("a pass failed")
    assert not target.exists()  # never a folder that looks complete
    assert (tmp_path / "exp.partial" / "baseline.onnx").read_text() == "done"
    with pytest.raises(UsageError, match="--resume"):
        RunFolder(target, force=False)
    with RunFolder(target, force=False, resume=True) as folder:  # continues in place
        assert (folder.path / "baseline.onnx").exists()
    assert (target / "baseline.onnx").exists() and not (tmp_path / "exp.partial").exists()


def test_keep_failed_false_leaves_no_folder_and_no_parent_made_for_it(tmp_path):
    """sensitivity and partition cannot resume: a failure leaves nothing, not an empty folder."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "other").mkdir()
    for target in (tmp_path / "new" / "deeper" / "exp", tmp_path / "runs" / "exp"):
        with pytest.raises(RuntimeError), RunFolder(target, force=False, keep_failed=False) as folder:
            (folder.path / "half.onnx").write_text("half")
            raise RuntimeError("a budget was missed")
        assert not target.exists() and not target.with_name("exp.partial").exists()
    assert not (tmp_path / "new").exists()  # made for the run: removed
    assert (tmp_path / "runs" / "other").is_dir()  # there before: kept


def test_a_command_that_cannot_resume_is_never_told_to(tmp_path):
    """sensitivity and partition have no --resume: a .partial a killed process left is offered to
    --force alone (it said 'Pass --resume to continue it', an option they refuse)."""
    target = tmp_path / "exp"
    partial = tmp_path / "exp.partial"
    partial.mkdir()
    (partial / ".edgec-run").write_text("")
    for path in (target, partial):  # -o exp, and -o exp.partial as the error names it
        with pytest.raises(UsageError) as info:
            RunFolder(path, force=False, keep_failed=False)
        assert "--resume" not in info.value.message and "--force" in info.value.message
    with RunFolder(target, force=True, keep_failed=False) as folder:  # the advice works
        (folder.path / "sensitivity.json").write_text("{}")
    assert (target / "sensitivity.json").is_file() and not partial.exists()


def test_an_interrupted_sensitivity_does_not_claim_it_kept_anything(write_recipe, tmp_path,
                                                                     monkeypatch):
    from click.testing import CliRunner

    from edgec.cli import cli

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("edgec.sensitivity.scan_recipe", ctrl_c)
    out = tmp_path / "sens"
    result = CliRunner().invoke(cli, ["sensitivity", str(write_recipe()), "-o", str(out), "-q"])
    assert result.exit_code == 130, result.output
    assert "interrupted." in result.stderr and "kept" not in result.stderr
    assert not out.exists() and not (tmp_path / "sens.partial").exists()


def test_force_discards_an_unfinished_run(tmp_path):
    partial = tmp_path / "exp.partial"
    partial.mkdir()
    (partial / "stale.onnx").write_text("old")
    with RunFolder(tmp_path / "exp", force=True) as folder:
        assert not (folder.path / "stale.onnx").exists()
    assert not (tmp_path / "exp" / "stale.onnx").exists()


def test_force_never_deletes_a_folder_edgec_did_not_make(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "images.npz").write_text("precious")
    with pytest.raises(UsageError, match="not an edgec run folder") as info:
        RunFolder(data, force=True)
    assert "will not delete it" in str(info.value)
    assert (data / "images.npz").read_text() == "precious"


def test_force_replaces_an_empty_folder_and_an_old_run_without_marker(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with RunFolder(empty, force=True) as folder:
        (folder.path / "a.txt").write_text("x")
    assert (empty / "a.txt").exists() and (empty / ".edgec-run").exists()
    old = tmp_path / "old"  # a run from before the marker: recognised by its report
    old.mkdir()
    (old / "report.json").write_text('{"schema": "edgec.report/1"}')
    with RunFolder(old, force=True):
        pass
    assert not (old / "report.json").exists()


def test_force_refuses_the_working_folder(tmp_path, monkeypatch):
    here = tmp_path / "work"
    here.mkdir()
    (here / "recipe.yaml").write_text("model: {}")
    monkeypatch.chdir(here)
    for target in (".", "../work", ".."):
        with pytest.raises(UsageError, match="folder you are working in"):
            RunFolder(Path(target), force=True)
    with pytest.raises(UsageError, match="already exists"):
        RunFolder(Path("."), force=False)
    assert (here / "recipe.yaml").exists()


def test_the_python_api_is_told_its_own_arguments_not_cli_flags(tmp_path, write_recipe):
    """A notebook user has no --force or -o to pass: api.compress's errors name force=True and
    output=; the CLI's keep the flags."""
    from edgec.api import compress

    target = tmp_path / "exp"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(UsageError) as api:
        compress(write_recipe(), output=target)
    assert "pass force=True to replace it" in api.value.message and "--force" not in api.value.message
    assert "Choose another with output=" in api.value.message
    with pytest.raises(UsageError) as cli:  # outside the API: the CLI's spelling again
        RunFolder(target, force=False)
    assert "Choose another with -o, or pass --force" in cli.value.message


def test_option_spelling():
    from edgec.errors import option, spelling

    assert (option("force"), option("output", "runs/x")) == ("--force", "-o runs/x")
    with spelling("api"):
        assert (option("resume"), option("output", "runs/x")) == ("resume=True", "output='runs/x'")
    with spelling("sweep"), spelling("api"):  # a sweep's variant runs through the API
        assert option("resume").startswith("the same `edgec sweep` command")
    assert option("resume") == "--resume"


def _stopped_force_run(target: Path) -> Path:
    """A complete run in ``target`` and, beside it, a --force run of it that failed."""
    with RunFolder(target, force=False) as folder:
        (folder.path / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), RunFolder(target, force=True) as folder:
        (folder.path / "baseline.onnx").write_text("done")
        raise RuntimeError("interrupted")
    return folder.path


def test_resume_beside_a_complete_run_says_which_flags_continue_it(tmp_path):
    target = tmp_path / "exp"
    partial = _stopped_force_run(target)
    with pytest.raises(UsageError) as info:
        RunFolder(target, force=False, resume=True)
    assert "already complete" not in info.value.message  # the unfinished run is the point
    assert f"'{partial}' holds an unfinished run" in info.value.message
    assert "Pass --resume --force to continue that run" in info.value.message
    with RunFolder(target, force=True, resume=True) as folder:  # the flags it names work
        assert folder.resumed and (folder.path / "baseline.onnx").exists()
    assert (target / "baseline.onnx").exists() and not (target / "old.txt").exists()


def test_the_unfinished_folder_itself_is_never_called_complete(tmp_path):
    target = tmp_path / "exp"
    partial = _stopped_force_run(target)
    for force, resume in ((False, True), (True, False), (False, False)):
        with pytest.raises(UsageError) as info:
            RunFolder(partial, force=force, resume=resume)  # -o exp.partial, the path errors print
        assert "already complete" not in info.value.message
        assert f"the unfinished run of '{target}'" in info.value.message
        assert f"-o {target} --resume --force to continue it" in info.value.message
    shutil.rmtree(target)  # no complete run beside it: --resume alone continues it
    with pytest.raises(UsageError, match=re.escape(f"Pass -o {target} --resume to continue it")):
        RunFolder(partial, force=False, resume=True)


def test_the_unfinished_run_message_mentions_report_json_only_when_there_is_one(tmp_path):
    target = tmp_path / "exp"
    partial = tmp_path / "exp.partial"
    partial.mkdir()  # e.g. a full disk: the failed report could not be written
    with pytest.raises(UsageError) as info:
        RunFolder(target, force=False)
    assert "report.json" not in info.value.message and "--resume" in info.value.message
    (partial / "report.json").write_text("{}")
    with pytest.raises(UsageError, match=r"its report\.json says where it stopped"):
        RunFolder(target, force=False)
