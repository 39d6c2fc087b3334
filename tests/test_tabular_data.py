"""Data and feature tests for project 01 (flagship.tabular): the real Adult files, the schema and the feature pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flagship.core.data import SchemaError, validate
from flagship.tabular.data import POSITIVE, TARGET, adult_schema, load_adult, load_data, stratified_sample
from flagship.tabular.features import CATEGORICAL, FEATURES, MISSING, NUMERIC, make_features, make_xy, vocabulary


@pytest.fixture(scope="module")
def adult():
    """Both Adult files, read and validated once."""
    return load_adult("train"), load_adult("test")


def test_row_counts_and_labels(adult):
    train, test = adult
    assert (len(train), len(test)) == (32_561, 16_281)
    # the test file's trailing dots are stripped, so both files share one label vocabulary
    assert train[TARGET].value_counts().to_dict() == {"<=50K": 24_720, ">50K": 7_841}
    assert test[TARGET].value_counts().to_dict() == {"<=50K": 12_435, ">50K": 3_846}


def test_question_marks_are_missing(adult):
    train, _ = adult
    missing = train.isna().sum()
    assert set(missing[missing > 0].index) == {"workclass", "occupation", "native_country"}
    assert not (train.select_dtypes("category") == "?").any().any()


def test_schema_rejects_bad_rows(adult):
    train, _ = adult
    schema = adult_schema()
    with pytest.raises(SchemaError, match="'sex'.*allowed values"):
        validate(train.head(2).assign(sex=["Female", "Unknown"]), schema, "frame")
    with pytest.raises(SchemaError, match="'age'"):
        validate(train.head(2).assign(age=[30, 200]), schema, "frame")
    with pytest.raises(SchemaError, match="'hours_per_week'.*required column"):
        validate(train.head(2).drop(columns="hours_per_week"), schema, "frame")


def test_bad_split_names_the_argument():
    with pytest.raises(ValueError, match="split="):
        load_adult("validation")


def test_stratified_sample_keeps_the_class_balance(adult):
    train, _ = adult
    sample = stratified_sample(train, 2_000, seed=1)
    assert len(sample) == 2_000
    assert abs((sample[TARGET] == POSITIVE).mean() - (train[TARGET] == POSITIVE).mean()) < 0.001
    assert sample.index.equals(stratified_sample(train, 2_000, seed=1).index)  # seeded
    assert not sample.index.equals(stratified_sample(train, 2_000, seed=2).index)


def test_load_data_profiles():
    train, test = load_data(500, 300, seed=0)
    assert (len(train), len(test)) == (500, 300)


def test_make_xy_fills_missing_categories(adult):
    train, _ = adult
    X, y = make_xy(train.head(500))
    assert list(X.columns) == FEATURES and not X.isna().any().any()
    assert (X["occupation"] == MISSING).sum() == train.head(500)["occupation"].isna().sum()
    assert X[NUMERIC].dtypes.eq("float64").all() and set(y.unique()) <= {0, 1}
    X_only, y_none = make_xy(train.head(5).drop(columns=TARGET))
    assert y_none is None and len(X_only) == 5


def test_make_xy_names_missing_columns(adult):
    train, _ = adult
    with pytest.raises(KeyError, match="capital_gain"):
        make_xy(train.drop(columns="capital_gain"))


def test_features_encode_and_ignore_unknown_categories(adult):
    train, _ = adult
    X, _ = make_xy(train.head(2_000))
    features = make_features().fit(X)
    out = features.transform(X)
    vocab = vocabulary(features)
    assert out.shape[1] == len(NUMERIC) + sum(len(v) for v in vocab.values())
    assert set(vocab) == set(CATEGORICAL) and vocab["sex"] == ["Female", "Male"]
    unknown = features.transform(X.head(1).assign(native_country="Atlantis"))
    names = features.get_feature_names_out()
    cols = [i for i, n in enumerate(names) if n.startswith("cat__native_country_")]
    assert unknown[0, cols].sum() == 0  # an unseen category encodes as all zeros
    np.testing.assert_array_equal(out[:, : len(NUMERIC)], X[NUMERIC].to_numpy())  # numbers pass through


def test_dataset_card_and_schema_agree():
    from flagship.core.config import project_dirs

    card = (project_dirs("01")["data"] / "dataset_README.md").read_text()
    for col in adult_schema()["columns"]:
        assert f"| {col['name']} |" in card, col["name"]
    assert "CC BY 4.0" in card and "trailing `.`" in card.replace("Trailing", "trailing")


def test_frame_roundtrip_types():
    df = pd.DataFrame({c: [1] for c in NUMERIC} | {c: [None] for c in CATEGORICAL})
    X, _ = make_xy(df)
    assert (X[CATEGORICAL] == MISSING).all().all()


def test_every_profile_parameter_is_declared_by_a_notebook():
    """papermill only injects parameters a notebook declares (and silently skips a line it cannot parse)."""
    import papermill
    import yaml

    from flagship.core.config import project_dirs

    folder = project_dirs("01")["nbs"]
    declared = set().union(*(papermill.inspect_notebook(str(nb)) for nb in sorted(folder.glob("0[1-9]_*.ipynb"))))
    profiles = yaml.safe_load((folder / "params.yaml").read_text())
    for profile, params in profiles.items():
        assert set(params) <= declared, (profile, set(params) - declared)
