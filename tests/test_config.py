"""Profiles and settings."""

from __future__ import annotations

import pytest

from agecourse import config


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("AGECOURSE_PROFILE", "cpu")
    assert config.detect_profile() == "cpu"
    monkeypatch.setenv("AGECOURSE_PROFILE", "tpu")
    with pytest.raises(ValueError, match="tpu"):
        config.detect_profile()


def test_ci_detected_without_profile(monkeypatch):
    monkeypatch.delenv("AGECOURSE_PROFILE")
    monkeypatch.setenv("CI", "true")
    assert config.detect_profile() == "ci"


def test_profiles_differ_and_ci_is_small():
    ci, cpu, gpu = (config.get_settings(p) for p in ("ci", "cpu", "gpu"))
    assert ci.image_size < cpu.image_size < gpu.image_size
    assert ci.epochs < cpu.epochs < gpu.epochs
    assert gpu.mixed_precision and not cpu.mixed_precision
    assert ci.uses_synthetic and "synthetic" in ci.data_label


def test_data_dir_from_env_ignored_by_ci(monkeypatch, tmp_path):
    monkeypatch.setenv("AGECOURSE_DATA", str(tmp_path))
    assert config.get_settings("cpu").data_dir == tmp_path
    assert config.get_settings("ci").data_dir is None


def test_overrides_and_artifacts(monkeypatch, tmp_path):
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path))
    settings = config.get_settings("ci", epochs=1)
    assert settings.epochs == 1
    assert settings.artifacts_dir == tmp_path / "ci-synthetic"
    assert settings.replace(seed=3).seed == 3
    with pytest.raises(ValueError, match="unknown profile"):
        config.get_settings("laptop")


def test_model_a_recipe_lives_in_the_settings():
    """The recipe is read from the settings: overriding a field changes the model that is built."""
    from agecourse.recipes import augmentation_for, build_model_a_for

    for profile in ("ci", "cpu", "gpu"):
        settings = config.get_settings(profile)
        assert settings.lr_patience < settings.patience, "the learning rate must drop before early stopping gives up"
        assert settings.age_loss in ("huber", "mae", "mse") and settings.lr_schedule in ("plateau", "cosine")
        augmentation_for(settings)  # every profile's augmentation setting is one the recipe knows
    small = config.get_settings("cpu", image_size=24, model_filters=(4,), gender_loss_weight=5.0, augment=False)
    model = build_model_a_for(small)
    assert model.input_shape[1] == 24 and "augment" not in [layer.name for layer in model.layers]
    assert model.get_compile_config()["loss_weights"]["gender"] == 5.0


def test_one_cache_folder_for_downloads_archives_and_synthetic_faces(monkeypatch, tmp_path):
    from agecourse.archive import default_extract_dir
    from agecourse.synthetic import default_synthetic_dir

    monkeypatch.setenv("AGECOURSE_DATA_DIR", str(tmp_path / "here"))
    archive = tmp_path / "UTKFace.tar.gz"
    archive.write_bytes(b"x")
    assert config.cache_dir() == tmp_path / "here"
    assert default_extract_dir(archive).parent == tmp_path / "here" / "extracted"
    assert default_synthetic_dir(10, 64, 1).parent == tmp_path / "here"
    monkeypatch.delenv("AGECOURSE_DATA_DIR")
    assert config.cache_dir().name == "agecourse" and config.cache_dir().is_absolute()


def test_readme_profile_table_matches_the_settings():
    """The README's profile table types each profile's sizes and epochs: they must be the settings'."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line for line in readme.splitlines() if line.startswith("| `")}
    for profile in config.PROFILES:
        s = config.get_settings(profile, data_dir="unused")
        cells = [cell.strip() for cell in rows[profile].split("|")[1:-1]]
        model_a, model_b = cells[3], cells[4]
        assert model_a.startswith(f"{s.image_size} px, "), (profile, model_a)
        assert f" {s.epochs} (" in model_a, (profile, model_a)
        assert model_b.startswith(
            f"{s.transfer_alpha}, {s.transfer_image_size} px, {s.transfer_epochs_frozen} + {s.transfer_epochs_finetune}"
        ), (profile, model_b)
        if s.transfer_cached_views:
            assert f"({s.transfer_cached_views} views" in model_b, (profile, model_b)


def test_the_environment_is_read_once_when_the_settings_are_made(monkeypatch, tmp_path):
    """``AGECOURSE_ARTIFACTS``, ``AGECOURSE_RETRAIN``, ``AGECOURSE_FULL_RECIPE`` and ``AGECOURSE_DEMO_MODEL``
    become fields in get_settings: changing the environment afterwards changes nothing."""
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "first"))
    monkeypatch.setenv("AGECOURSE_RETRAIN", "yes")
    monkeypatch.setenv("AGECOURSE_DEMO_MODEL", "mine.keras")
    settings = config.get_settings("cpu")
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "second"))
    monkeypatch.setenv("AGECOURSE_RETRAIN", "0")
    assert settings.artifacts_root == tmp_path / "first"
    assert settings.artifacts_dir.parent == tmp_path / "first"
    assert settings.retrain is True and settings.demo_model == "mine.keras"
    assert config.get_settings("cpu").artifacts_root == tmp_path / "second"
    assert config.recipe_settings("cpu").artifacts_root == config.Settings.artifacts_root  # no environment read


def test_lessons_train_for_a_budget_in_the_cpu_profile_unless_the_full_recipe_is_asked_for(monkeypatch):
    monkeypatch.delenv("AGECOURSE_FULL_RECIPE", raising=False)
    cpu = config.get_settings("cpu")
    assert cpu.lesson_budget_s and cpu.lesson_budget_s > 0
    assert config.get_settings("ci").lesson_budget_s is None and config.get_settings("gpu").lesson_budget_s is None
    monkeypatch.setenv("AGECOURSE_FULL_RECIPE", "1")
    assert config.get_settings("cpu").lesson_budget_s is None
    assert config.get_settings("cpu", lesson_budget_s=30.0).lesson_budget_s == 30.0  # an override still wins


def test_env_flag_is_the_one_parser_of_on_off_variables(monkeypatch):
    monkeypatch.delenv("AGECOURSE_X", raising=False)
    assert config.env_flag("AGECOURSE_X") is False and config.env_flag("AGECOURSE_X", default=True) is True
    for on in ("1", "true", "YES"):
        monkeypatch.setenv("AGECOURSE_X", on)
        assert config.env_flag("AGECOURSE_X") is True
    for off in ("0", "False", "no"):
        monkeypatch.setenv("AGECOURSE_X", off)
        assert config.env_flag("AGECOURSE_X", default=True) is False
    monkeypatch.setenv("AGECOURSE_X", "maybe")
    with pytest.raises(ValueError, match="AGECOURSE_X='maybe'"):
        config.env_flag("AGECOURSE_X")
    monkeypatch.setenv("AGECOURSE_FULL_RECIPE", "2")
    with pytest.raises(ValueError, match="AGECOURSE_FULL_RECIPE"):
        config.get_settings("cpu")


def test_data_and_weights_variables_are_read_here(monkeypatch, tmp_path):
    monkeypatch.delenv("AGECOURSE_DATA", raising=False)
    assert config.data_from_env() == (False, None)
    monkeypatch.setenv("AGECOURSE_DATA", "Synthetic")
    assert config.data_from_env() == (True, None)
    monkeypatch.setenv("AGECOURSE_DATA", str(tmp_path))
    assert config.data_from_env() == (True, tmp_path)
    monkeypatch.setenv("AGECOURSE_WEIGHTS", f"{tmp_path / 'a'}{__import__('os').pathsep}{tmp_path / 'b'}")
    assert config.weights_dirs() == [tmp_path / "a", tmp_path / "b"]
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert config.keras_home() == tmp_path / "keras"


def test_settings_have_typed_fields_only_and_one_in_colab():
    from agecourse import notebook

    fields = config.Settings.__dataclass_fields__
    assert "extra" not in fields, "no untyped bag of settings"
    assert config.get_settings("ci").transfer_finetune_layers == config.FINETUNE_LAYERS
    assert notebook.in_colab is config.in_colab


def test_every_environment_variable_config_reads_is_documented_in_the_readme():
    """The README's Profiles section names each AGECOURSE_ variable the package reads (config, and
    the command line's AGECOURSE_DEBUG)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    read = set(re.findall(r"AGECOURSE_[A-Z_]+", (root / "agecourse" / "config.py").read_text(encoding="utf-8")))
    readme = (root / "README.md").read_text(encoding="utf-8")
    profiles = readme[readme.index("## Profiles") : readme.index("\n## ", readme.index("## Profiles") + 5)]
    undocumented = sorted(name for name in read if f"`{name}" not in profiles)
    assert not undocumented, f"document these in the README's Profiles section: {undocumented}"
    for module in (root / "agecourse").glob("*.py"):
        if module.name != "config.py":
            text = module.read_text(encoding="utf-8")
            assert 'os.environ.get("AGECOURSE_' not in text, f"{module.name} reads an AGECOURSE_ variable itself"
