"""Early selection in a sweep: replayed Optuna studies, every epoch counted, the command."""

import json

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from sklyap._early import StartupPrior, default_regressor
from sklyap.cli import main
from sklyap.datasets._population import _train_network
from sklyap.study import population_features, run_sweep
from sklyap.study._replay import replay_study
from sklyap.study._sweep import POLICIES, successive_halving

from helpers import tiny_task


def test_successive_halving_keeps_the_best_of_each_rung_and_counts_its_epochs():
    # 9 candidates, 9 epochs, factor 3: rungs after epochs 1, 3 and 9 with 9, 3
    # and 1 candidates. Candidate i's accuracy after epoch e is i/10 until epoch
    # 2; from epoch 3 candidate 6 overtakes 7 and 8.
    curves = np.tile(np.arange(9)[:, None] / 10, (1, 9))
    curves[6, 2:] = 0.95
    kept, epochs = successive_halving(curves, range(9), min_epochs=1, factor=3)
    assert kept.tolist() == [6]
    # 9 candidates x 1 epoch, 3 resume to epoch 3, 1 to epoch 9; nothing left to train.
    assert epochs == 9 * 1 + 3 * 2 + 1 * 6
    # 8 candidates need only 2 rungs (1 + floor(log3 8)): the 3 best after epoch
    # 1 are kept, trained on from epoch 3 to 9.
    kept, epochs = successive_halving(
        curves[[0, 1, 2, 3, 4, 5, 7, 8]], range(8), min_epochs=1, factor=3
    )
    assert sorted(kept.tolist()) == [5, 6, 7] and epochs == 8 * 1 + 3 * 2 + 3 * 6
    # Candidates of a rung beyond the last epoch are trained on to it: 4 epochs,
    # factor 2 gives rungs 1, 2, 4 with 4, 2, 1 candidates.
    kept, epochs = successive_halving(
        np.tile(np.arange(4)[:, None], (1, 4)), range(4), min_epochs=1, factor=2
    )
    assert kept.tolist() == [3] and epochs == 4 + 2 * 1 + 1 * 2
    # First scores rank the first rung instead of the accuracy after epoch 1:
    # they put candidates 0, 1 and 2 ahead, of which the accuracy keeps 2.
    first = np.array([0.9, 0.8, 0.7, 0, 0, 0, 0, 0, 0])
    kept, epochs = successive_halving(curves, range(9), min_epochs=1, factor=3, first_scores=first)
    assert kept.tolist() == [2] and epochs == 9 * 1 + 3 * 2 + 1 * 6


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    settings = {"n_models": 24, "n_pilot": 8, "cache_dir": cache, "n_orders": 2}
    settings["spectrum_cost"] = 0.5
    settings["prior"] = StartupPrior(intercept=0.2, coef=(0.6, 0.0, 0.2, 0.0), spread=0.1)
    result = run_sweep(tiny_task(n_epochs=4), keep=0.25, verbose=0, **settings)
    return result, settings


def _by_hand(pruner, order, curves):
    """An Optuna study run the plain way: enqueued trials, study.optimize, one worker."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for network in order:
        study.enqueue_trial({"network": int(network)})

    def objective(trial):
        network = trial.suggest_int("network", 0, len(curves) - 1)
        for epoch in range(1, curves.shape[1] + 1):
            trial.report(float(curves[network, epoch - 1]), epoch)
            if epoch < curves.shape[1] and trial.should_prune():
                raise optuna.TrialPruned()
        return float(curves[network, -1])

    study.optimize(objective, n_trials=len(order))
    return study


def test_sweep_counts_every_epoch_and_agrees_with_plain_optuna(sweep):
    result, settings = sweep
    assert [(r["key"], r["workers"]) for r in result.rows] == [
        (key, w) for w in (1, 4) for key in POLICIES
    ]
    _, features, population = population_features(
        tiny_task(n_epochs=4), n_models=24, cache_dir=settings["cache_dir"], verbose=0
    )
    curves = population.val_accuracy
    final = curves[:, -1]
    orders = [np.random.default_rng([0, k]).permutation(24) for k in range(2)]
    # No pruning trains everything: all the epochs, nothing missed.
    for w in (1, 4):
        row = result.row("none", w)
        assert row["epochs_fraction_per_repeat"] == [1.0, 1.0]
        assert row["regret_per_repeat"] == [0.0, 0.0] and row["top10_recall"] == 1.0
    # Optuna's own pruners, replayed, decide as the same study run with study.optimize.
    for key, make in [
        ("median", optuna.pruners.MedianPruner),
        ("halving", optuna.pruners.SuccessiveHalvingPruner),
    ]:
        regrets, epochs = [], []
        for order in orders:
            study = _by_hand(make(), order, curves)
            done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
            epochs.append(sum(len(t.intermediate_values) for t in study.trials) / curves.size)
            regrets.append(final.max() - max(t.value for t in done))
        row = result.row(key, 1)
        assert row["epochs_fraction_per_repeat"] == pytest.approx(epochs), key
        assert row["regret_per_repeat"] == pytest.approx(regrets), key
    # The pilot: its 8 networks to the end, 16 candidates for 1 epoch, 4 (25%) kept
    # to the end, and all 24 spectra at half an epoch each; what it finds is the
    # best of the pilot and the kept.
    row = result.row("pilot", 1)
    spent = 8 * 4 + 16 + 4 * 3 + 24 * 0.5
    assert row["epochs_fraction_per_repeat"] == pytest.approx([spent / 96] * 2)
    # LyapunovPruner pays half an epoch for each of the 24 spectra: its epochs
    # are the trials' epochs (from the intermediate values) plus 12.
    for key in ("lyapunov", "lyapunov+score", "lyapunov+prior"):
        assert min(result.row(key, 1)["epochs_fraction_per_repeat"]) >= (24 + 12) / 96
    X = np.column_stack([features["early"], curves[:, 0]])
    for order, regret in zip(orders, row["regret_per_repeat"]):
        model = default_regressor().fit(X[order[:8]], final[order[:8]])
        rest = order[8:]
        kept = rest[np.argsort(-model.predict(X[rest]), kind="stable")[:4]]
        assert regret == pytest.approx(final.max() - final[np.r_[order[:8], kept]].max())
    assert result.row("pilot", 4)["regret_per_repeat"] == row["regret_per_repeat"]
    # HalvingGridSearchCV over all 24, from epoch 1 at factor 3.
    kept, spent = successive_halving(curves, range(24), min_epochs=1, factor=3)
    row = result.row("halving-search", 1)
    assert row["epochs_fraction_per_repeat"] == pytest.approx([spent / 96] * 2)
    assert row["regret_per_repeat"] == pytest.approx([final.max() - final[kept].max()] * 2)
    # Paired against the best of Optuna's pruners by mean regret over the budgets.
    for c in result.comparisons():
        best = result.best_optuna(c["workers"])
        assert c["against"] == best
        d = np.subtract(
            result.row(c["policy"], c["workers"])["regret_at_35_per_repeat"],
            result.row(best, c["workers"])["regret_at_35_per_repeat"],
        )
        assert c["regret_at_35_difference"] == pytest.approx(d.mean())
        assert c["regret_at_35_better"] == int((d < -1e-12).sum())


def test_a_replayed_study_is_the_study_that_trains(tmp_path):
    """Training network i for e epochs gives the population's curve at e, and its
    spectrum after epoch 1 the recorded one: a study that trains reports what the
    replay reports, and its pruner decides alike."""
    task = tiny_task(n_epochs=3)
    _, features, population = population_features(task, n_models=4, cache_dir=tmp_path, verbose=0)
    order = [2, 0, 3, 1]
    replayed = replay_study(
        optuna.pruners.MedianPruner(n_startup_trials=1),
        order,
        population.val_accuracy,
        spectra=features["early"],
    )["study"]
    config = task.population
    trained = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1)
    )
    for network in order:
        trained.enqueue_trial({"network": network})

    def objective(trial):
        hp = population.hyperparameters[trial.suggest_int("network", 0, 3)]
        for epoch in range(1, 4):
            run = _train_network(config["task"], hp, epoch, (1,), 64, config["max_train"])
            if epoch == 1:
                trial.set_user_attr("accuracy_1", run["val_accuracy"][-1])
            trial.report(run["val_accuracy"][-1], epoch)
            if epoch < 3 and trial.should_prune():
                raise optuna.TrialPruned()
        return run["val_accuracy"][-1]

    trained.optimize(objective, n_trials=4)
    for a, b in zip(replayed.trials, trained.trials):
        assert a.params == b.params and a.state == b.state
        assert a.intermediate_values == b.intermediate_values
        assert a.value == b.value
    np.testing.assert_array_equal(
        [t.user_attrs["sklyap_spectrum"]["spectrum"] for t in replayed.trials],
        features["early"][order],
    )


def test_sweep_is_deterministic_for_a_seed_and_its_json_reads_back(sweep):
    result, settings = sweep
    again = run_sweep(tiny_task(n_epochs=4), keep=0.25, verbose=0, **settings)
    # (As JSON: NaN, "no near-best network finished", is never equal to itself.)
    assert json.loads(again.to_json())["rows"] == json.loads(result.to_json())["rows"]
    assert again.curves == result.curves
    payload = json.loads(result.to_json())
    assert payload["settings"]["n_pilot"] == 8 and payload["settings"]["workers"] == [1, 4]
    assert StartupPrior.from_dict(payload["settings"]["prior"]) == settings["prior"]
    assert len(payload["curves"]) == 2 * len(POLICIES)
    assert payload["comparisons"] == json.loads(json.dumps(result.comparisons()))
    assert "| Optuna MedianPruner | 1 |" in result.markdown()
    table = result.table()
    assert "every epoch counted (the pilot's 8 networks included)" in table
    assert "LyapunovPruner on spectra, no prior - Optuna" in table
    # The anytime curves start at the worst network's regret and end at the row's.
    for curve in result.curves:
        row = result.row(curve["key"], curve["workers"])
        assert curve["regret"][-1] == pytest.approx(row["regret"])


def test_sweep_command_refuses_bad_options(capsys):
    for option, value, expected in [
        ("--keep", "2", "expected a float in (0, 1], got 2"),
        ("--keep", "some", "expected a float in (0, 1], got 'some'"),
        ("--n-orders", "1", "expected an int >= 2, got 1"),
        ("--spectrum-cost", "-1", "expected 'auto' or a float >= 0 (epochs), got -1"),
        ("--spectrum-cost", "slow", "expected 'auto' or a float >= 0 (epochs), got 'slow'"),
        ("--workers", "0", "expected an int >= 1, got 0"),
        ("--factor", "1", "expected an int >= 2, got 1"),
        ("--task", "mnist", "invalid choice: 'mnist'"),
    ]:
        with pytest.raises(SystemExit):
            main(["sweep", option, value])
        assert expected in capsys.readouterr().err


def test_sweep_refuses_bad_settings_before_training():
    for bad, error in [
        (0, ValueError),
        (1.5, ValueError),
        (float("nan"), ValueError),
        (True, TypeError),
        ("0.1", TypeError),
    ]:
        with pytest.raises(error, match=f"keep must be a float in \\(0, 1\\], got {bad!r}"):
            run_sweep("digits", keep=bad)
    with pytest.raises(
        ValueError, match="n_pilot=30 leaves no candidates in a population of n_models=30"
    ):
        run_sweep("digits", n_pilot=30, n_models=30)
    with pytest.raises(ValueError, match="workers must be distinct ints >= 1, got \\(1, 1\\)"):
        run_sweep("digits", workers=(1, 1))
    with pytest.raises(ValueError, match="workers must be an int >= 1, got 0"):
        run_sweep("digits", workers=(0,))
    with pytest.raises(ValueError, match="factor must be an int >= 2, got 1"):
        run_sweep("digits", factor=1)
    with pytest.raises(ValueError, match="n_orders must be an int >= 2, got 1"):
        run_sweep("digits", n_orders=1)
    for bad in (-1.0, float("nan"), "fast", True):
        with pytest.raises(ValueError, match="spectrum_cost must be 'auto' or a number of epochs"):
            run_sweep("digits", spectrum_cost=bad)
    with pytest.raises(TypeError, match="prior must be a StartupPrior or None, got 'default'"):
        run_sweep("digits", prior="default")
    with pytest.raises(ValueError, match="unknown task 'mnist'"):
        run_sweep("mnist")


@pytest.mark.slow
def test_sweep_command_writes_table_json_and_figure(tmp_path, capsys, session_matplotlib):
    out = tmp_path / "out"
    args = ["sweep", "--task", "digits", "--n-models", "16", "--n-pilot", "6"]
    args += ["--n-orders", "2", "--epochs", "3", "--max-train", "200", "--seed", "0"]
    args += ["--output", str(out), "--cache-dir", str(tmp_path / "c"), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "HalvingGridSearchCV" in printed and "LyapunovPruner on spectra" in printed
    (payload,) = json.loads((out / "results.json").read_text())
    assert payload["settings"]["task"] == "digits"
    assert len(payload["rows"]) == 2 * len(POLICIES)
    assert (out / "anytime.png").stat().st_size > 10_000
    assert session_matplotlib()  # the figure is the command's own, not pyplot's
    assert "| policy | workers | regret at 20% |" in (out / "results.md").read_text()


def test_pooled_table_pools_the_orders_of_every_population(sweep):
    result, _ = sweep
    from sklyap.study._sweep_result import pooled_markdown

    twice = pooled_markdown([result, result], workers=4, keys=["median", "lyapunov"])
    lines = twice.splitlines()
    assert len(lines) == 2 + 2 and "(0, 0)" in lines[2]
    row = result.row("median", 4)
    values = row["regret_at_35_per_repeat"] * 2
    cell = lines[2].split(" | ")[3]
    assert cell == f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"
    assert lines[2].endswith(f"| {100 * row['epochs_fraction']:.0f}% |")


def test_spectrum_cost_is_measured_per_kind_of_network(sweep):
    from sklyap.study._sweep import measure_spectrum_cost

    _, settings = sweep
    task = tiny_task(n_epochs=4)
    _, _, population = population_features(
        task, n_models=24, cache_dir=settings["cache_dir"], verbose=0
    )
    cost, by_kind = measure_spectrum_cost(task, population)
    kinds = {f"{hp['cell']} {hp['hidden_size']}" for hp in population.hyperparameters}
    assert set(by_kind) == kinds
    for hp, value in zip(population.hyperparameters, cost):
        entry = by_kind[f"{hp['cell']} {hp['hidden_size']}"]
        assert value == entry["epochs"] == entry["spectrum_s"] / entry["epoch_s"]
        assert entry["epoch_s"] > 0 and entry["spectrum_s"] > 0


def test_anytime_figure_pools_populations_whose_curves_end_apart(sweep):
    import copy

    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from sklyap.study._sweep_result import plot_anytime

    result, _ = sweep
    longer = copy.deepcopy(result)
    for curve in longer.curves:
        # Spectra took this population to 150% of the epochs: 50 more steps.
        curve["grid"] = curve["grid"] + [round(1 + i / 100, 2) for i in range(1, 51)]
        curve["regret"] = curve["regret"] + [curve["regret"][-1]] * 50
    (ax,) = plot_anytime([result, longer], workers=1)
    line = ax.get_lines()[0]
    x, y = line.get_data()
    assert x[-1] == pytest.approx(150.0) and len(x) == len(result.curves[0]["grid"]) + 50
    first = next(c for c in result.curves if c["key"] == "none" and c["workers"] == 1)
    assert y[-1] == pytest.approx(first["regret"][-1])
    assert ax.get_xlim()[1] == pytest.approx(150.0)


def test_a_population_plots_alone_with_its_regret_axis_uncapped(sweep):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")

    result, _ = sweep
    ax = result.plot(workers=4)
    lines = {
        line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")
    }
    assert set(lines) == set(POLICIES.values())
    for key, label in POLICIES.items():
        assert lines[label].get_ydata()[-1] == pytest.approx(result.row(key, 4)["regret"])
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= max(
        max(c["regret"]) for c in result.curves if c["workers"] == 4
    )
