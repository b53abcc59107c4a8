"""A rekey killed between renaming an artifact and recording its new key id leaves the
artifact refused until the next rekey (benchmarks/trials.py: all 5 rekey kills of a run).
The refusal must point to that cure, not to "damaged, or forged"."""

from engines.actions import rekey as rekey_action
from engines.pipeline.crypto import generate_key_hex
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import KEY, make_files_env


def test_an_artifact_a_cut_rekey_left_says_to_run_rekey_again(tmp_path, isolated_env, monkeypatch):
    env = make_files_env(tmp_path)
    dotenv = tmp_path / "app.env"
    dotenv.write_text("TOKEN=abc\n")
    env.set(BACKUP_SECRET_FILES=str(dotenv))
    assert env.cli("backup", "secrets") == ExitCode.OK
    env.set(BACKUP_ENCRYPTION_KEY=generate_key_hex(), BACKUP_ENCRYPTION_KEY_PREVIOUS=KEY)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill -9 just after the rename would leave it

    monkeypatch.setattr(rekey_action, "sidecar_bytes", killed)
    assert env.cli("rekey") == ExitCode.CANCELLED
    monkeypatch.undo()

    out = tmp_path / "restored.env"
    for args in (("verify", "latest"), ("restore", "secrets", "latest", "--to", str(out))):
        result = env.cli_process(*args)
        assert result.returncode == ExitCode.INTEGRITY, (args, result.stderr)
        said = result.stdout + result.stderr
        assert "interrupted rekey" in said and "jarvis-tui rekey" in said, said
    assert not out.exists()

    assert env.cli_process("rekey").returncode == ExitCode.OK
    result = env.cli_process("restore", "secrets", "latest", "--to", str(out))
    assert result.returncode == ExitCode.OK, result.stderr
    assert out.read_text() == "TOKEN=abc\n"
