"""agecourse.tuning: the Keras Tuner hypermodel of Model A, its epoch timer and results table."""

from __future__ import annotations

import keras
import keras_tuner
import pytest

from agecourse import tuning
from agecourse.config import get_settings
from agecourse.recipes import datasets


def test_model_a_hypermodel_opens_learning_rate_and_width(tmp_path, split_maker):
    settings = get_settings("ci", image_size=16, batch_size=8, model_filters=(4, 8))
    build = tuning.model_a_hypermodel(settings, age_init=30.0)
    hp = keras_tuner.HyperParameters()
    hp.Fixed("learning_rate", 2e-3)
    hp.Fixed("width", 2.0)
    model = build(hp)
    convs = [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs == [8, 8, 16, 16], "width 2 doubles every filter count"
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(2e-3)

    split = split_maker(tmp_path / "faces", sizes=(20, 5, 5), side=32)
    train, val, _ = datasets(settings, split)
    tuner = keras_tuner.RandomSearch(
        build, objective="val_loss", max_trials=2, seed=1, directory=tmp_path / "tuner", overwrite=True
    )
    timer = tuning.EpochTimes()
    tuner.search(train, validation_data=val, epochs=2, callbacks=[timer], verbose=0)
    table = tuning.tuner_table(tuner)
    assert [epoch for epoch, _ in timer.seconds] == [0, 1, 0, 1], "one list for every trial's epochs"
    assert timer.steady_epoch_seconds() > 0
    assert len(table) == 2 and {"learning_rate", "width", "score"} <= set(table.columns)
    assert table["score"].is_monotonic_increasing, "best (lowest validation loss) first"
    assert table["width"].isin(tuning.WIDTHS).all() and table["learning_rate"].between(3e-4, 1e-2).all()


def test_search_budget_is_the_profiles_and_small():
    from agecourse.config import PROFILES, get_settings

    for profile in PROFILES:
        trials, epochs, faces = tuning.search_budget(get_settings(profile))
        assert (trials, epochs, faces) == tuning.SEARCH_BUDGETS[profile]
        assert 1 <= trials <= 10 and 1 <= epochs <= 3 and (faces is None or faces > 0)
