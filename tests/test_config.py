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
