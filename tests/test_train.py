"""The training command: where it writes by default, and that it works from any folder."""

import inspect
from pathlib import Path

import pytest
import tomllib

from vasa_lib import paths, run_config, train

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.toml")), ids=lambda path: path.name)
def test_training_writes_under_runs_unless_told_otherwise(config):
    # a shipped checkpoint (assets/checkpoints) changes only by a command that names it
    settings = tomllib.loads(config.read_text()).get("train", {})
    for key in ("checkpoint", "checkpoint_dir", "run_dir"):
        if key in settings:
            assert Path(settings[key]).parts[0] == "runs", (key, settings[key])


@pytest.mark.parametrize("command, option, read", [
    ("identity", "--checkpoint", lambda given: given["overrides"]["checkpoint"]),
    ("reader", "--checkpoint", lambda given: given["overrides"]["checkpoint"]),
    ("evaluators", "--out", lambda given: given["out"])], ids=["identity", "reader", "evaluators"])
def test_every_training_command_can_name_where_it_writes(monkeypatch, command, option, read):
    real, given = getattr(train, f"train_{command}"), {}
    monkeypatch.setattr(train, f"train_{command}",
                        lambda *args, **kwargs: given.update(inspect.signature(real).bind(*args, **kwargs).arguments))
    train.main([command, option, "assets/checkpoints"])
    assert read(given) == "assets/checkpoints"


@pytest.fixture
def course(tmp_path, monkeypatch) -> Path:
    """A course folder of its own (VASA_HOME) with a tiny identity config, and the current folder
    somewhere else."""
    root = tmp_path / "course"
    (root / "assets" / "checkpoints").mkdir(parents=True)
    (root / "configs").mkdir()
    (root / "configs" / "identity_tiny.toml").write_text(
        '[model]\ninput_size = 16\nwidths = [4, 8]\nembed_dim = 8\n\n'
        '[train_args]\nn_identities = 4\nsteps = 2\npeople_per_batch = 2\nsize = 32\n\n'
        '[train]\ncheckpoint = "runs/identity_tiny/identity_tiny.safetensors"\n')
    monkeypatch.setenv("VASA_HOME", str(root))
    monkeypatch.delenv("VASA_CHECKPOINT_DIR", raising=False)
    paths.course_root.cache_clear()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    yield root
    paths.course_root.cache_clear()


def test_training_from_another_folder_writes_the_card(course):
    # the card copies the config, read (like the config itself) from the course's folder
    train.main(["identity", "--config", "configs/identity_tiny.toml"])
    card = (course / "runs" / "identity_tiny" / "identity_tiny.md").read_text()
    assert "n_identities = 4" in card and (course / "runs" / "identity_tiny" / "identity_tiny.safetensors").exists()
    assert not list(Path.cwd().iterdir())


KINDS = {"face": run_config.FaceRun, "motion": run_config.MotionRun, "reader": run_config.ReaderRun,
         "identity": run_config.IdentityRun, "evaluators": run_config.EvaluatorsRun,
         "video": run_config.VideoFeatureRun}


def kind_of(config: Path) -> str:
    name = config.name.replace("expression_net", "reader")      # the expression network is a parameter reader
    return next(kind for kind in ("evaluators", "identity", "reader", "motion", "face", "video") if kind in name)


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.toml")), ids=lambda path: path.name)
def test_every_shipped_config_reads_as_its_typed_run(config):
    run = run_config.load_run(config, KINDS[kind_of(config)])
    table = tomllib.loads(config.read_text())
    for key, value in table.get("train", {}).items():
        assert getattr(run.train, key) == value


@pytest.mark.parametrize("text, message", [
    ('precision = "bf16-mixed"\n[train]\nlr = 0.1\n', "unknown key 'precision'"),   # a key above its table
    ("[train]\nlearning_rate = 0.1\n", "[train]: unknown key 'learning_rate'"),
    ("[data]\nbatch = 4\n", "[data]: unknown key 'batch'"),
    ('[train]\nschedule = "cosine"\n', "schedule must be"),
    ("train = 3\n", "must be a table")])
def test_a_misspelt_key_fails_with_its_name(tmp_path, text, message):
    path = tmp_path / "face.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run_config.load_run(path, run_config.FaceRun)


def test_a_misspelt_model_key_fails_before_training(tmp_path):
    path = tmp_path / "face.toml"
    path.write_text("[model]\nsizee = 64\n")
    with pytest.raises(ValueError, match="unknown key 'sizee'"):
        train.train_face(str(path))
