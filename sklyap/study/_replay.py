"""Replayed Optuna studies: pruners compared on recorded populations, every epoch counted.

Training is deterministic for a network's seed, so a trial that trains
network ``i`` for ``e`` epochs reports the population's recorded validation
accuracy after epoch ``e``, and at the early epoch its recorded spectrum. A
real Optuna study (``ask``/``tell``, the installed pruners) runs over the
networks in a random order, one trial per network, with one or several
workers that each train one epoch per tick; it never trains anything.
"""

import math

import numpy as np

from .._early import SPECTRUM_ATTR, default_regressor, record_spectrum

__all__ = ["BUDGETS", "REPLAY_METRICS", "outcome", "pilot_policy", "replay_study"]

#: Fractions of the epochs of training every network to the end at which
#: regret is read.
BUDGETS = (0.2, 0.35, 0.5)
#: Within this of the best final accuracy counts as finding the best.
NEAR_BEST = 0.005
REPLAY_METRICS = (
    *(f"regret_at_{int(100 * b)}" for b in BUDGETS),
    "regret",
    *(f"top10_recall_at_{int(100 * b)}" for b in BUDGETS),
    "top10_recall",
    "epochs_fraction",
    "epochs_to_near_best",
)


def import_optuna():
    try:
        import optuna
    except ImportError as error:
        raise ImportError("the sweep runs Optuna studies: pip install 'sklyap[optuna]'") from error

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def replay_study(
    pruner,
    order,
    curves,
    *,
    spectra=None,
    early_epoch=1,
    architectures=None,
    sizes=None,
    n_workers=1,
    seed=0,
    spectrum_cost=None,
):
    """Run a real Optuna study whose trials replay recorded networks.

    Parameters
    ----------
    pruner : optuna.pruners.BasePruner
    order : sequence of int
        The networks, in the order the study presents them (by
        ``study.enqueue_trial``).
    curves : ndarray of shape (n_networks, n_epochs)
        Validation accuracy after every epoch; the last column is a trial's
        value.
    spectra : ndarray of shape (n_networks, n_features), default=None
        Spectra after ``early_epoch``, stored with each trial as
        :func:`~sklyap.selection.report_spectrum` would.
    early_epoch : int, default=1
    architectures : list of tuple, default=None
    sizes : sequence of int, default=None
        Each network's architecture and hidden size, stored with its spectrum.
    n_workers : int, default=1
        Trials in flight: each trains one epoch per tick, in worker order, and
        a free worker asks for the next trial.
    spectrum_cost : ndarray of shape (n_networks,), default=None
        What taking a network's spectrum costs, in epochs of its training:
        added to the epochs spent when its trial stores the spectrum. None
        counts nothing.
    seed : int, default=0
        Names the study (``replay-<seed>``: ``HyperbandPruner`` sorts trials
        into brackets by the name) and seeds its sampler (which only replays
        the enqueued networks).

    Returns
    -------
    dict
        ``completed``: (epochs spent when it finished, network) per finished
        trial, in order; ``pruned``: (epochs it trained, network) per pruned
        trial; ``epochs``: epochs spent in all; ``study``: the Optuna study.
    """
    optuna = import_optuna()
    n_networks, n_epochs = curves.shape
    # A fixed name: HyperbandPruner assigns trials to brackets by it.
    study = optuna.create_study(
        study_name=f"replay-{seed}",
        direction="maximize",
        pruner=pruner,
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )
    for network in order:
        study.enqueue_trial({"network": int(network)})
    waiting, running = len(order), []
    spent, completed, pruned = 0, [], []
    while waiting or running:
        while waiting and len(running) < n_workers:
            trial = study.ask()
            running.append([trial, trial.suggest_int("network", 0, n_networks - 1), 0])
            waiting -= 1
        still = []
        for item in running:
            trial, network, epoch = item
            epoch += 1
            spent += 1
            if spectra is not None and epoch == early_epoch:
                architecture = None if architectures is None else architectures[network]
                size = None if sizes is None else sizes[network]
                record = record_spectrum(spectra[network], epoch, architecture, size)
                trial.set_user_attr(SPECTRUM_ATTR, record)
                if spectrum_cost is not None:
                    spent += float(spectrum_cost[network])
            trial.report(float(curves[network, epoch - 1]), epoch)
            if epoch == n_epochs:
                study.tell(trial, float(curves[network, -1]))
                completed.append((spent, network))
            elif trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                pruned.append((epoch, network))
            else:
                item[2] = epoch
                still.append(item)
        running = still
    return {"completed": completed, "pruned": pruned, "epochs": spent, "study": study}


def pilot_policy(
    order, curves, spectra, *, n_pilot, keep, early_epoch, regressor=None, spectrum_cost=None
):
    """Today's pilot-based selection, its pilot counted.

    The first ``n_pilot`` networks of ``order`` are trained to the end; a
    regressor fitted on their early spectra and early accuracy against their
    final accuracy ranks the rest after ``early_epoch``, and the ``keep``
    fraction it ranks highest are trained to the end, best first. Every
    network's spectrum costs ``spectrum_cost`` (epochs, per network), when
    given: the pilot's as they finish, the candidates' after their early epoch.

    Returns
    -------
    dict
        As :func:`replay_study`'s, without ``study``.
    """
    order = np.asarray(order)
    n_epochs = curves.shape[1]
    pilot, candidates = order[:n_pilot], order[n_pilot:]
    features = np.column_stack([spectra, curves[:, early_epoch - 1]])
    model = (default_regressor() if regressor is None else regressor).fit(
        features[pilot], curves[pilot, -1]
    )
    predicted = model.predict(features[candidates])
    k = max(1, math.floor(keep * len(candidates) + 0.5))
    kept = candidates[np.argsort(-predicted, kind="stable")[:k]]
    cost = np.zeros(len(curves)) if spectrum_cost is None else np.asarray(spectrum_cost, float)
    completed, spent = [], 0.0
    for network in pilot:
        spent += n_epochs + cost[network]
        completed.append((spent, int(network)))
    spent += len(candidates) * early_epoch + cost[candidates].sum()
    for network in kept:
        spent += n_epochs - early_epoch
        completed.append((spent, int(network)))
    dropped = sorted(set(candidates.tolist()) - set(kept.tolist()))
    return {"completed": completed, "pruned": [(early_epoch, n) for n in dropped], "epochs": spent}


def outcome(run, final, n_epochs):
    """What a policy's run found, against the population's final accuracies.

    Returns
    -------
    dict
        ``regret_at_<b>`` for each budget in :data:`BUDGETS` (the best final
        accuracy of all networks minus the best of those finished within
        that fraction of the epochs of training every network to the end;
        the worst network's when none has), ``regret`` (at the end),
        ``top10_recall`` (fraction of the ``ceil(n / 10)`` best networks
        trained to the end; ties with the last count) and
        ``top10_recall_at_<b>`` (of those finished within each budget), ``epochs_fraction``
        (epochs spent, of training every network to the end) and
        ``epochs_to_near_best`` (the fraction when a network within
        :data:`NEAR_BEST` of the best finished; NaN if none did), and
        ``anytime``: (epochs fraction, best so far) at each finish.
    """
    final = np.asarray(final, dtype=float)
    n = len(final)
    total = n * n_epochs
    best = final.max()
    found = -np.inf
    anytime = []
    for spent, network in run["completed"]:
        found = max(found, final[network])
        anytime.append((spent / total, float(found)))
    out = {}
    for budget in BUDGETS:
        within = [value for fraction, value in anytime if fraction <= budget + 1e-12]
        out[f"regret_at_{int(100 * budget)}"] = float(
            best - (within[-1] if within else final.min())
        )
    out["regret"] = float(best - (anytime[-1][1] if anytime else final.min()))
    k = max(1, math.ceil(0.1 * n))
    threshold = np.sort(final)[::-1][k - 1]
    for budget in (*BUDGETS, None):
        finished = np.array(
            [
                network
                for spent, network in run["completed"]
                if budget is None or spent <= (budget + 1e-12) * total
            ],
            dtype=int,
        )
        key = "top10_recall" if budget is None else f"top10_recall_at_{int(100 * budget)}"
        out[key] = min(int((final[finished] >= threshold).sum()), k) / k
    out["epochs_fraction"] = run["epochs"] / total
    near = [fraction for fraction, value in anytime if value >= best - NEAR_BEST]
    out["epochs_to_near_best"] = near[0] if near else math.nan
    out["anytime"] = anytime
    return out
