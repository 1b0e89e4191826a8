"""WordNet feature files: orientation, names, runs and the errors that list what is in the file.

The HDF5 round trips need h5py (skipped without it). The reading logic itself is also
tested through a minimal stand-in with h5py's ``visititems`` contract (callback with the
path relative to the group, groups and datasets alike; datasets have shape, dtype and
``[()]``), so it runs everywhere.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from vlm_brain.stimuli.text import CaptionError
from vlm_brain.stimuli.wordnet import (
    WordNetError,
    WordNetFeatures,
    features_from_group,
    list_datasets,
    read_wordnet_features,
    wordnet_features_from_arrays,
)

N_TRS, N_CATEGORIES = 12, 4
SYNSETS = [b"dog.n.01", b"plant.n.02", b"car.n.01", b"sky.n.01"]


def labels(seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((N_TRS, N_CATEGORIES)) > 0.5).astype(np.uint8)


class FakeDataset:
    def __init__(self, values):
        self.values = np.asarray(values)
        self.shape, self.dtype = self.values.shape, self.values.dtype

    def __getitem__(self, key):
        assert key == ()
        return self.values


class FakeGroup:
    """Nested dict of arrays; visititems walks it like h5py (parents before children)."""

    def __init__(self, members: dict):
        self.members = {k: FakeGroup(v) if isinstance(v, dict) else FakeDataset(v) for k, v in members.items()}

    def visititems(self, func, prefix=""):
        for key, obj in self.members.items():
            name = f"{prefix}{key}"
            func(name, obj)
            if isinstance(obj, FakeGroup):
                obj.visititems(func, prefix=f"{name}/")


def test_features_names_and_runs_from_a_nested_group():
    matrix = labels()
    runs = np.repeat([b"MOVIE1", b"MOVIE2"], N_TRS // 2)
    group = FakeGroup({"stimulus": {"features": matrix, "synsets": np.array(SYNSETS)}, "run": runs})
    wordnet = features_from_group(group, "w.hdf5", "/stimulus/features", "stimulus/synsets", "run", n_trs=N_TRS)
    assert wordnet.names == ["dog.n.01", "plant.n.02", "car.n.01", "sky.n.01"]
    assert wordnet.data.dtype == np.float32
    np.testing.assert_array_equal(wordnet.data, matrix)
    assert wordnet.runs.tolist() == ["MOVIE1"] * 6 + ["MOVIE2"] * 6
    np.testing.assert_array_equal(wordnet.select("MOVIE2"), matrix[6:])
    frame = wordnet.to_frame()
    assert list(frame.columns) == ["run", *wordnet.names] and frame.shape == (N_TRS, 1 + N_CATEGORIES)


def test_categories_by_trs_is_transposed_from_n_trs_or_from_the_names():
    matrix = labels(1)
    group = FakeGroup({"features": matrix.T, "names": np.array(SYNSETS).reshape(-1, 1)})
    by_trs = features_from_group(group, "w.hdf5", "features", n_trs=N_TRS)
    np.testing.assert_array_equal(by_trs.data, matrix)
    assert by_trs.names == [f"category_{j}" for j in range(N_CATEGORIES)]
    by_names = features_from_group(group, "w.hdf5", "features", names_dataset="names")
    np.testing.assert_array_equal(by_names.data, matrix)
    # neither hint: taken as (T, n_categories), i.e. not transposed
    assert features_from_group(group, "w.hdf5", "features").data.shape == (N_CATEGORIES, N_TRS)


def test_missing_dataset_lists_the_datasets_in_the_file():
    group = FakeGroup({"a": {"feat": labels()}, "names": np.array(SYNSETS)})
    with pytest.raises(WordNetError, match=r"w.hdf5: no dataset 'features' \(the features_dataset argument\); the"
                                           r" datasets in the file are: a/feat \(12, 4\) uint8; names \(4,\) \|S10"):
        features_from_group(group, "w.hdf5", "features")
    with pytest.raises(WordNetError, match=r"no dataset 'synsets' \(the names_dataset argument\)"):
        features_from_group(group, "w.hdf5", "a/feat", names_dataset="synsets")
    with pytest.raises(WordNetError, match="datasets in the file are: a/feat"):
        features_from_group(group, "w.hdf5", "a")  # a group, not a dataset


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_trs": 30}, r"shape \(12, 4\) fits neither \(T, n_categories\) nor its transpose for 30 TRs"),
    ({"names": ["a", "b"]}, "for 2 category names"),
    ({"runs": ["A"] * 5}, r"5 run labels for 12 rows"),
])
def test_shapes_that_do_not_fit_are_errors(kwargs, message):
    with pytest.raises(WordNetError, match=message) as info:
        wordnet_features_from_arrays(labels(), **kwargs)
    assert isinstance(info.value, CaptionError)


def test_bad_arrays():
    with pytest.raises(WordNetError, match="expected a 2-D"):
        wordnet_features_from_arrays(np.zeros(5))
    with pytest.raises(WordNetError, match="expected numeric labels"):
        wordnet_features_from_arrays(np.array([["a", "b"]]))
    with pytest.raises(WordNetError, match="no run labels"):
        WordNetFeatures(np.zeros((2, 1), np.float32), ["x"]).select("A")
    group = FakeGroup({"f": labels(), "n": np.array(SYNSETS).reshape(2, 2)})
    with pytest.raises(WordNetError, match=r"dataset 'n' has shape \(2, 2\); expected one label per entry"):
        features_from_group(group, "w.hdf5", "f", names_dataset="n")


def test_without_h5py_the_error_says_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` raise ImportError
    with pytest.raises(WordNetError, match=r"needs the h5py package, which is not installed.*pip install h5py"):
        read_wordnet_features(tmp_path / "w.hdf5", "features")


# --------------------------------------------------------------------------- real HDF5 (needs h5py)
def test_hdf5_round_trip(tmp_path):
    h5py = pytest.importorskip("h5py")
    matrix = labels(2)
    path = tmp_path / "WordNetFeatures.hdf5"
    with h5py.File(path, "w") as handle:
        handle["movies/features"] = matrix.T  # (n_categories, T)
        handle["movies/names"] = np.array(SYNSETS)
        handle.create_dataset("runs", data=["MOVIE1"] * N_TRS, dtype=h5py.string_dtype())
    assert list_datasets(path) == {"movies/features": ((N_CATEGORIES, N_TRS), "uint8"),
                                   "movies/names": ((N_CATEGORIES,), "|S10"), "runs": ((N_TRS,), "object")}
    wordnet = read_wordnet_features(path, "movies/features", "movies/names", "runs", n_trs=N_TRS)
    np.testing.assert_array_equal(wordnet.data, matrix)
    assert wordnet.names[1] == "plant.n.02" and set(wordnet.runs) == {"MOVIE1"}
    with pytest.raises(WordNetError, match="the datasets in the file are: movies/features"):
        read_wordnet_features(path, "features")


def test_hdf5_unreadable_and_missing_files(tmp_path):
    pytest.importorskip("h5py")
    with pytest.raises(WordNetError, match="no such WordNet feature file"):
        read_wordnet_features(tmp_path / "none.hdf5", "features")
    (tmp_path / "text.hdf5").write_text("not hdf5")
    with pytest.raises(WordNetError, match="not a readable HDF5 file"):
        read_wordnet_features(tmp_path / "text.hdf5", "features")


def test_wordnet_labels_become_one_layer_on_the_run_timeline(tmp_path):
    """The `wordnet` family of feature_extraction.models: the file's labels, run by run, cut to the timeline."""
    h5py = pytest.importorskip("h5py")
    from vlm_brain.parameters import feature_extraction_problems
    from vlm_brain.pipelines.feature_extraction.nodes import extract_model_ans

    rng = np.random.default_rng(0)
    movies = {"MOVIE1": rng.integers(0, 2, (12, 5)), "MOVIE2": rng.integers(0, 2, (9, 5))}
    path = tmp_path / "WordNetFeatures.hdf5"
    with h5py.File(path, "w") as f:
        for movie, labels in movies.items():
            f[f"{movie}/labels"] = labels.T  # stored (categories, seconds): oriented by the names
            f[f"{movie}/synsets"] = np.array([f"s{i}.n.01" for i in range(5)], dtype="S")
    spec = {"family": "wordnet", "path": str(path), "features_dataset": "{run}/labels", "names_dataset": "{run}/synsets"}
    params = {"runs": {"MOVIE1": 10, "MOVIE2": 9}, "tr": 1.0}
    layers = extract_model_ans("wordnet", None, None, spec, params)
    assert list(layers) == ["wordnet.labels.L00"]
    np.testing.assert_array_equal(layers["wordnet.labels.L00"], np.vstack([movies["MOVIE1"][:10], movies["MOVIE2"]]))
    with pytest.raises(WordNetError, match="run MOVIE2 has 9 rows .* fewer than its 11 TRs"):
        extract_model_ans("wordnet", None, None, spec, {"runs": {"MOVIE1": 10, "MOVIE2": 11}, "tr": 1.0})
    problems = feature_extraction_problems({"models": {"wordnet": {"family": "wordnet", "path": str(path)}}})
    assert any("family wordnet needs `path`" in p for p in problems)
