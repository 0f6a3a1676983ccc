"""The AeLLE study and the command line that runs it, on a small population."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold

import sklyap
from sklyap.cli import main
from sklyap.study import (
    Predictor,
    StudyResult,
    make_predictors,
    population_features,
    run_study,
    top_quartile_precision,
)
from sklyap.study._evaluation import cross_validate_predictors, scores
from sklyap.study._result import json_ready
from sklyap.study._run import FEATURE_KEYS

from helpers import tiny_task

SMALL = [
    "--n-models",
    "8",
    "--epochs",
    "2",
    "--max-train",
    "200",
    "--n-splits",
    "2",
    "--n-repeats",
    "2",
    "--n-jobs",
    "1",
    "--quiet",
]


def test_top_quartile_precision_counts_the_overlap():
    y = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])  # top quarter: items 0 and 1
    assert top_quartile_precision(y, y) == 1.0
    assert top_quartile_precision(y, -y) == 0.0
    assert top_quartile_precision(y, np.array([1, 0, 0, 0, 0, 0, 0, 2.0])) == 0.5


def test_scores_known_answers():
    y = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    top = y >= np.median(y)
    perfect = scores(y, y, top_half=top)
    assert perfect == {"spearman": 1.0, "r2": 1.0, "top_quartile": 1.0, "auc": 1.0}
    reversed_ = scores(y, -y, top_half=top, has_r2=False)
    assert reversed_["spearman"] == -1.0 and reversed_["auc"] == 0.0
    assert np.isnan(reversed_["r2"]) and reversed_["top_quartile"] == 0.0
    # A monotone transform keeps the ranks but not R^2.
    squashed = scores(y, y**3, top_half=top)
    assert squashed["spearman"] == 1.0 and squashed["r2"] == pytest.approx(r2_score(y, y**3))


def test_cross_validation_predicts_every_network_once_per_repeat_on_shared_splits():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(20, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    predictors = [
        Predictor("final", "linear", LinearRegression(), "X"),
        Predictor("final", "mean", DummyRegressor(), "X", novel_features="X2"),
    ]
    features = {"X": X, "X2": X + 1.0}
    out = cross_validate_predictors(
        predictors, features, y, groups=np.arange(20), n_splits=4, n_repeats=3, random_state=7
    )
    # An exact linear relation is recovered out of fold.
    assert out[("final", "linear")]["prediction"].shape == (3, 20)
    assert_allclose(out[("final", "linear")]["prediction"], np.tile(y, (3, 1)))
    # The mean predictor's out-of-fold value is the mean of the other folds,
    # on the splits each repeat's seed gives; the novel inputs change nothing.
    seeds = np.random.RandomState(7).randint(np.iinfo(np.int32).max, size=3)
    for r, seed in enumerate(seeds):
        expected = np.empty(20)
        for train, test in GroupKFold(4, shuffle=True, random_state=int(seed)).split(
            X, y, np.arange(20)
        ):
            expected[test] = y[train].mean()
        assert_allclose(out[("final", "mean")]["prediction"][r], expected)
        assert_allclose(out[("final", "mean")]["novel"][r], expected)
    # Repeats differ, and parallel workers give the same numbers.
    mean = out[("final", "mean")]["prediction"]
    assert not np.allclose(mean[0], mean[1])
    parallel = cross_validate_predictors(
        predictors,
        features,
        y,
        groups=np.arange(20),
        n_splits=4,
        n_repeats=3,
        random_state=7,
        n_jobs=2,
    )
    assert_array_equal(parallel[("final", "mean")]["prediction"], mean)


def _result_with(rows, random_state=0, y=(0.0, 1 / 3, 2 / 3, 1.0)):
    settings = {
        "title": "t",
        "n_models": 4,
        "n_repeats": 3,
        "n_splits": 2,
        "final_epoch": 5,
        "early_epoch": 1,
        "random_state": random_state,
        "top_half_threshold": float(np.median(y)),
        "accuracy_range": [min(y), max(y)],
        "versions": {"sklyap": f"0.{random_state}"},
    }
    return StudyResult(
        settings=settings,
        rows=rows,
        y=np.asarray(y),
        early_accuracy=np.zeros(4),
        spectra={},
        oof={},
        embedding={},
        hyperparameters=[],
        timings={"cross_validation_s": 2.0},
    )


def _row(spectra, name, spearman, spectrum_only=True):
    row = {"spectra": spectra, "predictor": name, "spectrum_only": spectrum_only}
    for metric in ("spearman", "r2", "top_quartile", "auc"):
        values = np.asarray(spearman if metric == "spearman" else [np.nan] * 3)
        row[metric], row[f"{metric}_std"] = float(values.mean()), float(values.std(ddof=1))
        row[f"{metric}_per_repeat"] = list(values)
    return row


def test_comparisons_are_paired_against_the_best_spectrum_only_rival():
    result = _result_with(
        [
            _row("final", "AeLLE", [0.70, 0.72, 0.71]),
            _row("final", "ridge", [0.60, 0.60, 0.60]),
            _row("final", "forest", [0.76, 0.71, 0.74]),  # the best rival
            _row("final", "weights", [0.95, 0.95, 0.95], spectrum_only=False),  # not a rival
            _row("early", "AeLLE", [0.50, 0.50, 0.50]),
            _row("early", "ridge", [0.56, 0.53, 0.57]),
            _row("early", "val. accuracy at epoch 1", [0.80, 0.80, 0.80], spectrum_only=False),
            _row(
                "early",
                "AeLLE on spectra + val. accuracy at epoch 1",
                [0.79, 0.80, 0.795],
                spectrum_only=False,
            ),
        ]
    )
    final, early, accuracy = result.comparisons()
    assert final["against"] == "forest" and final["wins"] == 1 and final["n_repeats"] == 3
    assert final["mean_difference"] == pytest.approx(-0.08 / 3)
    assert final["std_difference"] == pytest.approx(np.std([-0.06, 0.01, -0.03], ddof=1))
    assert final["leads"] is False  # 0.027 below: more than the 0.02 tolerance
    assert early["against"] == "ridge" and early["wins"] == 0
    assert early["mean_difference"] == pytest.approx(-0.0533333) and early["leads"] is False
    # Adding the spectra to the learning curve must help, not merely keep up:
    # 0.005 below, within the tolerance of the other comparisons, is not a lead.
    assert accuracy["against"] == "val. accuracy at epoch 1" and accuracy["wins"] == 0
    assert accuracy["mean_difference"] == pytest.approx(-0.005)
    assert accuracy["leads"] is False and accuracy["criterion"] == "above"
    assert final["criterion"] == "above, or within 0.02"
    table = result.table()
    assert "0.71 ± 0.01" in table and "does not lead: not above, or within" in table
    assert "does not lead: not above" in table and " - " in table  # NaN R^2
    markdown = result.markdown().splitlines()
    assert markdown[2:5] == [
        "| spectra | predictor | Spearman | R² | top-25% | AUC top half |",
        "|---|---|---|---|---|---|",
        "| final (ep 5) | **AeLLE** | **0.71 ± 0.01** | - | - | - |",
    ]
    assert markdown[-3].startswith("* final (ep 5): AeLLE - forest = -0.027 ± 0.035")
    payload = json.loads(result.to_json())
    assert payload["rows"][0]["r2"] is None and payload["comparisons"][0]["wins"] == 1
    with pytest.raises(KeyError, match="no row 'lasso'"):
        result.row("final", "lasso")


def _two_populations():
    first = _result_with(
        [
            _row("final", "AeLLE", [0.70, 0.72, 0.71]),
            _row("final", "forest", [0.76, 0.71, 0.74]),
            _row("final", "weights", [0.95, 0.95, 0.95], spectrum_only=False),
        ],
        random_state=0,
    )
    second = _result_with(
        [
            _row("final", "AeLLE", [0.80, 0.82, 0.84]),
            _row("final", "forest", [0.74, 0.75, 0.73]),
            _row("final", "weights", [0.90, 0.91, 0.92], spectrum_only=False),
        ],
        random_state=2,
        y=(0.1, 0.2, 0.3, 0.9),
    )
    return first, second


def test_pooled_populations_concatenate_their_repeats_and_stay_paired():
    first, second = _two_populations()
    pooled = StudyResult.pool([first, second])
    assert pooled.settings["random_state"] == [0, 2] and pooled.settings["n_populations"] == 2
    assert pooled.settings["accuracy_range"] == [0.0, 1.0]
    assert pooled.settings["top_half_threshold"] == [0.5, 0.25]
    assert pooled.settings["versions"] == [{"sklyap": "0.0"}, {"sklyap": "0.2"}]
    assert pooled.timings == {"cross_validation_s": 4.0}
    aelle = pooled.row("final", "AeLLE")
    runs = [0.70, 0.72, 0.71, 0.80, 0.82, 0.84]
    assert aelle["spearman_per_repeat"] == pytest.approx(runs)
    assert aelle["spearman"] == pytest.approx(np.mean(runs))
    assert aelle["spearman_std"] == pytest.approx(np.std(runs, ddof=1))  # populations differ
    assert aelle["spearman_per_population"] == pytest.approx([0.71, 0.82])
    assert np.isnan(aelle["r2"]) and np.isnan(aelle["r2_per_population"]).all()
    # The forest leads on population 0 by 0.027 (so AeLLE alone would not
    # lead), AeLLE on population 2 by 0.080: paired over the six runs, +0.027.
    (final,) = pooled.comparisons()
    d = np.subtract(runs, [0.76, 0.71, 0.74, 0.74, 0.75, 0.73])
    assert final["against"] == "forest" and final["n_repeats"] == 6 and final["wins"] == 4
    assert final["mean_difference"] == pytest.approx(d.mean())
    assert final["std_difference"] == pytest.approx(d.std(ddof=1))
    assert final["mean_difference_per_population"] == pytest.approx([-0.08 / 3, 0.08])
    assert final["leads"] is True and final["leads_per_population"] == [False, True]
    assert first.comparisons()[0]["leads"] is False
    assert "mean_difference_per_population" not in first.comparisons()[0]
    table = pooled.table()
    assert "2 populations of 4 networks (random_state 0, 2)" in table
    assert "final test accuracy 0.00 to 1.00" in table and "mean ± std over runs" in table
    assert "higher in 4 of 6 runs" in table
    assert "random_state 0: -0.027; random_state 2: +0.080" in table
    assert "(leads: above, or within 0.02 on the pooled mean; on 1 of 2 populations alone)" in table
    markdown = pooled.markdown()
    assert "| spectra | predictor | Spearman | Spearman per population (0 / 2) | R²" in markdown
    assert "| final (ep 5) | forest | 0.74 ± 0.02 | 0.74 / 0.74 | - | - | - |" in markdown
    assert "* final (ep 5): AeLLE - forest = +0.027 ± 0.065, higher in 4 of 6 runs" in markdown


def test_results_read_back_from_json_pool_as_the_originals():
    first, second = _two_populations()
    again = [StudyResult.from_json(r.to_json()) for r in (first, second)]
    assert again[0].y is None and again[0].settings == first.settings
    assert np.isnan(again[0].row("final", "AeLLE")["r2_per_repeat"]).all()
    assert again[0].table() == first.table()  # the range comes from the settings
    pooled, pooled_again = StudyResult.pool([first, second]), StudyResult.pool(again)
    assert json.loads(pooled_again.to_json()) == json.loads(pooled.to_json())
    with pytest.raises(ValueError, match="without its arrays"):
        pooled.save_figures("unused")
    with pytest.raises(ValueError, match=r"not a study's JSON: no \['rows'\]"):
        StudyResult.from_json('{"settings": {}}')


def test_pool_refuses_what_is_not_independent_populations_of_one_study():
    first, second = _two_populations()
    with pytest.raises(ValueError, match="at least two StudyResult"):
        StudyResult.pool([first])
    with pytest.raises(ValueError, match=r"random_state \[0, 0\] repeats a seed"):
        StudyResult.pool([first, first])
    other = dataclasses.replace(second, settings={**second.settings, "n_splits": 5})
    with pytest.raises(ValueError, match=r"differ in \['n_splits'\]: \[2\] against \[5\]"):
        StudyResult.pool([first, other])
    short = _row("final", "AeLLE", [0.8, 0.8])
    torn = dataclasses.replace(second, rows=[short, *second.rows[1:]])
    with pytest.raises(
        ValueError, match="of random_state 2 holds 2 repeats, its settings n_repeats=3"
    ):
        StudyResult.pool([first, torn])
    fewer = dataclasses.replace(second, rows=second.rows[:2])
    only = r"only random_state 0 has \[\('final', 'weights'\)\], only random_state 2 has \[\]"
    with pytest.raises(ValueError, match=only):
        StudyResult.pool([first, fewer])
    shuffled = dataclasses.replace(second, rows=second.rows[::-1])
    with pytest.raises(ValueError, match="random_state 2 has them in another order"):
        StudyResult.pool([first, shuffled])
    pooled = StudyResult.pool([first, second])
    with pytest.raises(ValueError, match="one population each"):
        StudyResult.pool([pooled, first])


def test_json_ready_turns_numpy_and_nan_into_json():
    assert json_ready({"a": (np.float32(0.5), np.nan), "b": [np.int64(3), np.bool_(True)]}) == {
        "a": [0.5, None],
        "b": [3, True],
    }


def test_population_features_are_cached_and_consistent(tmp_path):
    task = tiny_task()
    spec, features, population = population_features(
        task, n_models=6, n_features=10, cache_dir=tmp_path, verbose=0
    )
    assert spec is task
    for key in ("final", "early", "final_novel"):
        assert features[key].shape == (6, 10) and np.isfinite(features[key]).all()
        # Spectra come sorted, largest exponent first.
        assert (np.diff(features[key], axis=1) <= 1e-12).all()
    assert not np.array_equal(features["final"], features["early"])
    assert not np.array_equal(features["final"], features["final_novel"])
    assert_array_equal(features["accuracy"][:, 0], population.val_accuracy[:, 0])
    assert_array_equal(features["early+accuracy"][:, :10], features["early"])
    assert_array_equal(features["early+accuracy"][:, 10], population.val_accuracy[:, 0])
    assert features["weights_final"].shape == features["weights_early"].shape
    assert set(features) == set(FEATURE_KEYS)  # what custom predictors may read
    # A second call loads from the cache: identical numbers.
    _, again, _ = population_features(
        task, n_models=6, n_features=10, cache_dir=tmp_path, verbose=0
    )
    for key, value in features.items():
        assert_array_equal(again[key], value)


def test_population_features_without_a_cache_trains_once(monkeypatch):
    from sklyap.study import _run

    calls = []
    train = _run.train_rnn_population

    def counting(*args, **kwargs):
        calls.append(kwargs["cache_dir"])
        return train(*args, **kwargs)

    monkeypatch.setattr(_run, "train_rnn_population", counting)
    _, features, population = population_features(
        tiny_task(), n_models=4, n_features=6, cache_dir=False, verbose=0
    )
    assert calls == [False]
    assert features["final"].shape == (4, 6) and population.test_accuracy.shape[0] == 4


def test_population_features_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown task 'mnist'"):
        population_features("mnist")
    with pytest.raises(ValueError, match="n_models"):
        population_features("digits", n_models=2)
    with pytest.raises(ValueError, match="n_splits=9 must be <= n_models=8"):
        run_study(tiny_task(), n_models=8, n_splits=9)


@pytest.mark.slow  # the whole study, on 8 networks: CI runs it with the slow tests
def test_study_reports_every_predictor_with_consistent_scores(tmp_path, session_matplotlib):
    result = run_study(
        tiny_task(),
        n_models=8,
        n_repeats=2,
        n_splits=2,
        n_features=12,
        cache_dir=tmp_path,
        verbose=0,
    )
    predictors = make_predictors()
    names = [(r["spectra"], r["predictor"]) for r in result.rows]
    assert len(names) == len(predictors) + 1  # AeLLE on final spectra also on novel inputs
    assert ("final", "AeLLE, novel inputs") in names
    # Every row's scores are those of its out-of-fold predictions.
    aelle = result.row("final", "AeLLE")
    oof = result.oof[("final", "AeLLE")]
    assert oof["prediction"].shape == oof["std"].shape == (2, 8) and (oof["std"] >= 0).all()
    r2 = [r2_score(result.y, oof["prediction"][r]) for r in range(2)]
    assert aelle["r2_per_repeat"] == pytest.approx(r2) and aelle["r2"] == pytest.approx(np.mean(r2))
    assert aelle["r2_std"] == pytest.approx(np.std(r2, ddof=1))
    classifier = result.row("early", "AeLLEClassifier (top half)")
    assert np.isnan(classifier["r2"]) and 0 <= classifier["auc"] <= 1
    assert result.embedding["final"].shape == (8, 8)
    assert [c["spectra"] for c in result.comparisons()] == ["final", "early", "early"]
    assert "Paired comparisons" in result.table()
    payload = json.loads(result.to_json())
    assert payload["settings"]["n_models"] == 8 and len(payload["rows"]) == len(names)
    versions = payload["settings"]["versions"]
    assert versions["sklyap"] == sklyap.__version__ and versions["torch"] == torch.__version__
    # The figures leave the caller's matplotlib as it was: backend, open figures.
    paths = result.save_figures(tmp_path / "figures")
    assert session_matplotlib()
    assert [p.name for p in paths] == list(StudyResult.FIGURES)
    assert all(p.stat().st_size > 10_000 for p in paths)


@pytest.fixture
def brief_aelle(monkeypatch):
    """The study's rows with their AeLLE estimators trained briefly (20 epochs,
    one member): the command-line tests check what the commands run and write,
    test_study_reports_every_predictor_with_consistent_scores the estimators."""
    from sklyap.aelle import AeLLEClassifier, AeLLERegressor
    from sklyap.study import _run

    def brief(**kwargs):
        rows = make_predictors(**kwargs)
        for row in rows:
            if isinstance(row.estimator, (AeLLERegressor, AeLLEClassifier)):
                row.estimator.set_params(max_epochs=20, n_estimators=1)
        return rows

    monkeypatch.setattr(_run, "make_predictors", brief)


@pytest.mark.slow  # the whole study, on 8 networks: CI runs it with the slow tests
@pytest.mark.usefixtures("brief_aelle")
def test_command_line_demo_writes_table_json_and_figures(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["demo", *SMALL, "--output", str(out), "--cache-dir", str(tmp_path / "c")]) == 0
    printed = capsys.readouterr().out
    assert "ridge on SpectrumStatistics" in printed and "AeLLE" in printed
    figures = ("spectra.png", "embedding.png", "predicted_vs_true.png", "roc.png", "scores.png")
    for name in ("results.json", "results.md", *figures):
        assert (out / name).stat().st_size > 100, name
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert len(rows) == len(make_predictors()) + 1
    assert {"spectra", "predictor", "spearman", "spearman_std"} <= set(rows[0])


@pytest.mark.slow
@pytest.mark.usefixtures("brief_aelle")
def test_command_line_pools_several_seeds(tmp_path, capsys):
    out, cache = tmp_path / "out", str(tmp_path / "c")
    # A single population's run first: its figures must not stay beside the pool.
    assert main(["study", *SMALL, "--seed", "0", "--output", str(out), "--cache-dir", cache]) == 0
    assert (out / "roc.png").exists()
    single = json.loads((out / "results.json").read_text())
    capsys.readouterr()
    args = ["study", *SMALL, "--seed", "0", "5", "--output", str(out), "--cache-dir", cache]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "2 populations of 8 trained networks" in printed
    assert "Pooled over the 2 populations" in printed
    assert "Removed 5 figures of an earlier single-population run" in printed
    assert not any((out / name).exists() for name in StudyResult.FIGURES)
    pooled = json.loads((out / "results.json").read_text())
    runs = [json.loads((out / f"random_state_{s}" / "results.json").read_text()) for s in (0, 5)]
    assert pooled["settings"]["random_state"] == [0, 5]
    assert [r["settings"]["random_state"] for r in runs] == [0, 5]
    assert runs[0]["rows"] == single["rows"]  # the same population, from the cache, studied alike
    # The pooled file is the pool of the two populations' files.
    again = StudyResult.pool([StudyResult.from_json(json.dumps(r)) for r in runs])
    assert json.loads(again.to_json())["rows"] == pooled["rows"]
    assert (out / "random_state_5" / "roc.png").stat().st_size > 100
    assert "Spearman per population (0 / 5)" in (out / "results.md").read_text()


def test_command_line_errors(capsys):
    assert main([]) == 2
    with pytest.raises(SystemExit):
        main(["demo", "--device", "tpu", *SMALL])
    assert "unknown device 'tpu'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["study", "--task", "mnist"])
    assert "invalid choice: 'mnist'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["study", "--seed", "3", "3"])
    assert "--seed 3 3: each population needs its own seed" in capsys.readouterr().err
    for option, value, expected in [
        ("--seed", "-1", "expected an int >= 0, got -1"),
        ("--seed", "one", "expected an int >= 0, got 'one'"),
        ("--n-splits", "1", "expected an int >= 2, got 1"),
        ("--n-repeats", "0", "expected an int >= 1, got 0"),
    ]:
        with pytest.raises(SystemExit):
            main(["study", option, value])
        assert f"argument {option}: {expected}" in capsys.readouterr().err


def test_an_internal_error_keeps_its_traceback(monkeypatch, tmp_path):
    """Usage errors exit with status 2 and one line; any other error is not
    dressed up as one: it propagates, with its traceback."""
    import sklyap.study

    def broken(*args, **kwargs):
        raise ValueError("a bug, not a usage error")

    monkeypatch.setattr(sklyap.study, "run_study", broken)
    with pytest.raises(ValueError, match="a bug, not a usage error"):
        main(["demo", "--output", str(tmp_path), *SMALL])


@pytest.mark.parametrize(
    "rows, error, message",
    [
        (lambda: make_predictors()[1:], ValueError, r"lack the rows \[\('final', 'AeLLE'\)\]"),
        (lambda: [*make_predictors(), make_predictors()[0]], ValueError, "repeated"),
        (lambda: [*make_predictors(), Predictor("final", "x", LinearRegression(), "finale")],
         ValueError, "unknown features 'finale'"),
        (lambda: [*make_predictors(), ("final", "AeLLE")], TypeError, "Predictor rows"),
    ],
)  # fmt: skip
def test_custom_predictors_are_checked_before_any_work(rows, error, message, monkeypatch):
    import sklyap.study._run

    monkeypatch.setattr(sklyap.study._run, "population_features", None)  # no call may reach it
    with pytest.raises(error, match=message):
        run_study(tiny_task(), n_models=8, predictors=rows(), cache_dir=False, verbose=0)


def test_results_record_the_installed_versions():
    import scipy
    import sklearn
    import skorch

    from sklyap.study._run import library_versions

    versions = library_versions()
    assert versions["sklyap"] == sklyap.__version__ and versions["torch"] == torch.__version__
    assert versions["scikit-learn"] == sklearn.__version__ and versions["numpy"] == np.__version__
    assert versions["scipy"] == scipy.__version__ and versions["skorch"] == skorch.__version__


def test_the_markdown_table_writer():
    from sklyap.study._tables import markdown_table

    assert markdown_table(["a", "b"], [[1, "x"], [2.5, None]]) == [
        "| a | b |",
        "|---|---|",
        "| 1 | x |",
        "| 2.5 | None |",
    ]
    with pytest.raises(ValueError, match="a row of 1 cells under a header of 2"):
        markdown_table(["a", "b"], [[1]])
