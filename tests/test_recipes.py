"""The profile's recipes: data pipelines, and build / train from settings for Model A and Model B.

Every training here is real: a tiny split of random JPEGs, one epoch per phase, a few seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from agecourse import recipes, training
from agecourse.config import get_settings
from agecourse.transfer import backbone_layers


def layer_names(model) -> list[str]:
    return [layer.name for layer in model.layers]


def test_cached_training_set_is_reshuffled_every_epoch(tiny_split):
    settings = get_settings("ci", image_size=16, batch_size=4, cache="memory")
    train, val, test = recipes.datasets(settings, tiny_split)
    epochs = [np.concatenate([labels["age"].numpy() for _, labels in train]) for _ in range(3)]
    assert all(sorted(e) == sorted(tiny_split.train["age"]) for e in epochs), "every image once per epoch"
    assert len({tuple(e) for e in epochs}) > 1, "caching must not freeze the first epoch's order"
    assert np.concatenate([lab["age"].numpy() for _, lab in test]).tolist() == tiny_split.test["age"].tolist()
    images, _ = next(iter(val))
    assert images.shape[1:] == (16, 16, 3)


def test_augmentation_for_reads_the_settings():
    settings = get_settings("ci")
    full = recipes.augmentation_for(settings.replace(augment=True))
    flips = recipes.augmentation_for(settings.replace(augment="flip"))
    assert [type(layer).__name__ for layer in flips.layers] == ["RandomFlip"]
    assert len(full.layers) > 1 and type(full.layers[0]).__name__ == "RandomFlip"
    assert recipes.augmentation_for(settings.replace(augment=False)) is None
    with pytest.raises(ValueError, match="'flip' or False"):
        recipes.augmentation_for(settings.replace(augment="heavy"))


def test_build_model_a_for_follows_the_settings():
    settings = get_settings(
        "ci", image_size=24, model_filters=(4, 8), augment=False, age_loss="mae", gender_loss_weight=7.0, dense_units=8
    )
    model = recipes.build_model_a_for(settings, age_init=40.0)
    assert model.input_shape == (None, 24, 24, 3)
    assert "augment" not in layer_names(model)
    assert model.get_compile_config()["loss_weights"] == {"age": 1.0, "gender": 7.0}
    assert model.get_layer("age_dense").units == 8
    assert float(model.get_layer("age").bias.numpy()[0]) == pytest.approx(40.0)
    assert recipes.build_model_a_for(settings.replace(augment=True)).get_layer("augment") is not None


def test_build_model_b_for_follows_the_settings(tiny_split):
    settings = get_settings("ci", transfer_image_size=32, transfer_dropout=0.4, augment="flip")
    model = recipes.build_model_b_for(settings, tiny_split, weights=None, verbose=False)
    assert model.input_shape == (None, 32, 32, 3) and model.name == "model_b_mobilenetv2"
    augment = model.get_layer("augment")
    assert [type(layer).__name__ for layer in augment.layers] == ["RandomFlip"], "settings.augment is honoured"
    assert float(model.get_layer("age").bias.numpy()[0]) == pytest.approx(tiny_split.train["age"].mean())
    assert "augment" not in layer_names(recipes.build_model_b_for(settings.replace(augment=False), weights=None))
    cached = recipes.build_model_b_for(settings.replace(transfer_cached_views=2), tiny_split, weights=None)
    assert "augment" not in layer_names(cached), "random layers below the cut would break the cache"


def test_learning_rates_follow_the_profile():
    cpu = get_settings("cpu")
    assert recipes.learning_rates_for(cpu) == (cpu.transfer_learning_rate, cpu.transfer_finetune_learning_rate)
    ci = get_settings("ci")
    first, second = recipes.learning_rates_for(ci)
    assert first == ci.learning_rate and 0 < second < first, "fine-tuning starts lower than phase 1"


def test_train_model_a_trains_with_the_settings(tiny_settings, tiny_split):
    settings = tiny_settings.replace(epochs=2, lr_schedule="cosine")
    model, history = recipes.train_model_a(settings, tiny_split, verbose=0)
    assert model.input_shape[1] == 24 and len(history["loss"]) == 2 and np.isfinite(history["val_age_mae"]).all()
    planned = [training.cosine_schedule(settings.learning_rate, 2)(epoch) for epoch in range(2)]
    assert history["learning_rate"] == pytest.approx(planned, rel=1e-5)
    with pytest.raises(ValueError, match="no 'weight' column"):
        recipes.train_model_a(settings, tiny_split, verbose=0, sample_weight="weight")


def test_model_b_on_images_honours_the_phases_and_the_schedule(tiny_settings, tiny_split):
    """The image-path trainer behind ``train_model_b`` (``transfer_cached_views = 0``); the whole of
    ``train_model_b`` on this path runs in tests/test_artifacts.py (``get_model(settings, "b")``)."""
    settings = tiny_settings.replace(
        transfer_epochs_finetune=2, transfer_lr_schedule="cosine", transfer_finetune_layers=5
    )
    model = recipes.build_model_b_for(settings, tiny_split, weights=None, verbose=False)
    frozen, finetune, info = recipes.train_images_for(settings, model, tiny_split, verbose=0)
    assert len(frozen["loss"]) == 1 and len(finetune["loss"]) == 2
    assert 0 < sum(layer.trainable for layer in backbone_layers(model)) <= 5, "transfer_finetune_layers"
    assert info == {"finetuned_backbone_layers": 5, "stopped_by_budget": ""}
    _, finetune_rate = recipes.learning_rates_for(settings)
    planned = [training.cosine_schedule(finetune_rate, 2)(epoch) for epoch in range(2)]
    assert finetune["learning_rate"] == pytest.approx(planned, rel=1e-5), "transfer_lr_schedule in phase 2"


def test_train_model_b_on_cached_views(tiny_settings, tiny_split):
    settings = tiny_settings.replace(transfer_cached_views=2)
    model, history = recipes.train_model_b(settings, tiny_split, verbose=0, weights=None)
    assert "augment" not in layer_names(model) and len(history["loss"]) == 2
    assert np.isfinite(history["val_loss"]).all()
    with pytest.raises(ValueError, match="trains Model B on images"):
        recipes.train_cached_for(settings.replace(transfer_cached_views=0), model, tiny_split)


def test_phase_plan_carries_the_phases_and_the_restore_choice(tiny_settings):
    for restore in (True, False):
        plan = recipes.phase_plan_for(tiny_settings.replace(transfer_restore_best=restore))
        assert plan.restore_best_weights is restore
    assert recipes.phase_plan_for(tiny_settings.replace(patience=3)).patience == 3
    assert recipes.phase_plan_for(tiny_settings.replace(patience=3, transfer_patience=9)).patience == 9
    plan = recipes.phase_plan_for(tiny_settings.replace(transfer_epochs_frozen=2, transfer_epochs_finetune=5))
    assert (plan.epochs_frozen, plan.epochs_finetune) == (2, 5)
    assert (plan.learning_rate, plan.finetune_learning_rate) == recipes.learning_rates_for(tiny_settings)


def test_phase_plan_carries_model_b_objective(tiny_settings):
    default = recipes.phase_plan_for(tiny_settings)
    assert default.loss_weights is None and default.weight_decay is None
    changed = recipes.phase_plan_for(tiny_settings.replace(transfer_gender_loss_weight=40, transfer_weight_decay=0.05))
    assert changed.loss_weights == {"age": 1.0, "gender": 40.0} and changed.weight_decay == 0.05


def test_oversampled_train_for_fills_every_age_band_and_gender_cell(tiny_split):
    from agecourse.balance import bands_of

    settings = get_settings("ci")
    assert recipes.oversampled_train_for(settings, tiny_split) is tiny_split, "None: the split as it is"
    train = tiny_split.train
    before = train.groupby([bands_of(train), "gender"], observed=True).size()
    over = recipes.oversampled_train_for(settings.replace(transfer_oversample=3), tiny_split)
    after = over.train.groupby([bands_of(over.train), "gender"], observed=True).size()
    assert (after >= 3).all() and (after.loc[before.index] >= before).all(), "filled, never shrunk"
    assert after.to_dict() == {cell: max(3, count) for cell, count in before.items()}
    assert sorted(set(over.train["path"])) == sorted(train["path"]), "every original kept, nothing new"
    assert over.val is tiny_split.val and over.test is tiny_split.test, "validation and test untouched"
    again = recipes.oversampled_train_for(settings.replace(transfer_oversample=3), tiny_split)
    assert again.train.equals(over.train), "seeded"
    with pytest.raises(ValueError, match="at least 1 row"):
        recipes.oversampled_train_for(settings.replace(transfer_oversample=0), tiny_split)


def test_cached_training_runs_on_the_oversampled_table(tiny_settings, tiny_split):
    settings = tiny_settings.replace(transfer_cached_views=1)
    rows = {}
    for oversample in (None, 3):
        chosen = settings.replace(transfer_oversample=oversample)
        model = recipes.build_model_b_for(chosen, tiny_split, weights=None, verbose=False)
        frozen, _, info = recipes.train_cached_for(chosen, model, tiny_split, verbose=0)
        assert np.isfinite(frozen["loss"]).all()
        rows[oversample] = info["train_feature_bytes"]
    expected = len(recipes.oversampled_train_for(settings.replace(transfer_oversample=3), tiny_split).train)
    assert rows[3] * len(tiny_split.train) == rows[None] * expected, "one cached row per oversampled row"
