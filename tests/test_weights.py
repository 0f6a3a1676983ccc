"""WeightStatistics: statistics of each weight tensor, and recurrent_module that finds the core."""

import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from torch import nn

from sklyap import WeightStatistics
from sklyap.dynamics import recurrent_module


class Classifier(nn.Module):
    def __init__(self, cell=nn.LSTM, bias=True):
        super().__init__()
        self.rnn = cell(2, 3, batch_first=True, bias=bias)
        self.fc = nn.Linear(3, 4)


def rnn_with(weight_hh):
    model = nn.RNN(1, 2)
    with torch.no_grad():
        model.weight_hh_l0.copy_(torch.tensor(weight_hh))
        model.weight_ih_l0.fill_(0.5)
        model.bias_ih_l0.copy_(torch.tensor([-1.0, 1.0]))
        model.bias_hh_l0.zero_()
    return model


def test_statistics_known_answers():
    model = rnn_with([[1.0, 2.0], [3.0, 4.0]])
    ws = WeightStatistics().fit([model])
    assert ws.parameter_names_ == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    row = ws.transform([model])[0].reshape(4, 7)
    # mean, std (population), min, q25, median, q75, max
    assert_allclose(row[1], [2.5, np.sqrt(1.25), 1.0, 1.75, 2.5, 3.25, 4.0])
    assert_allclose(row[0], [0.5, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5])
    assert_allclose(row[2], [0.0, 1.0, -1.0, -0.5, 0.0, 0.5, 1.0])
    assert_allclose(row[3], np.zeros(7))
    names = ws.get_feature_names_out()
    assert len(names) == ws.n_features_out_ == 28
    assert names[7] == "weight_hh_l0__mean" and names[13] == "weight_hh_l0__max"


def test_union_of_parameters_with_nan_where_a_model_lacks_one():
    torch.manual_seed(0)
    plain, no_bias = nn.GRU(2, 3), nn.GRU(2, 3, bias=False)
    ws = WeightStatistics().fit([no_bias, plain])
    assert ws.parameter_names_ == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    features = ws.transform([no_bias, plain])
    assert np.isnan(features[0, 14:]).all() and np.isfinite(features[0, :14]).all()
    assert np.isfinite(features[1]).all()
    # A parameter unseen in fit is left out.
    narrow = WeightStatistics().fit([no_bias])
    assert_array_equal(narrow.transform([plain]), features[1:, :14])
    # Gradient boosting takes the NaN columns as they are.
    y = np.array([0.2, 0.8])
    pipe = make_pipeline(WeightStatistics(), HistGradientBoostingRegressor(min_samples_leaf=1))
    assert pipe.fit([no_bias, plain], y).predict([plain]).shape == (1,)


def test_all_parameters_or_only_the_recurrent_core():
    torch.manual_seed(0)
    model = Classifier()
    full = WeightStatistics().fit([model])
    assert full.parameter_names_[0] == "rnn.weight_ih_l0" and full.parameter_names_[-1] == "fc.bias"
    core = WeightStatistics(parameters="recurrent").fit([model])
    assert core.parameter_names_ == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    # The core's statistics are the same numbers in both.
    assert_array_equal(core.transform([model]), full.transform([model])[:, :28])
    assert_array_equal(core.transform([model]), WeightStatistics().fit_transform([model.rnn]))


def test_models_are_not_modified_and_the_transformer_pickles():
    torch.manual_seed(0)
    model = Classifier(nn.GRU)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ws = WeightStatistics().fit([model])
    features = ws.transform([model])
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert_array_equal(pickle.loads(pickle.dumps(ws)).transform([model]), features)


def test_bad_inputs():
    model = nn.RNN(1, 2)
    with pytest.raises(TypeError, match="X must be a list of models.*got RNN"):
        WeightStatistics().fit(model)
    with pytest.raises(ValueError, match="X is an empty list"):
        WeightStatistics().fit([])
    with pytest.raises(TypeError, match="model 1: expected an nn.Module"):
        WeightStatistics().fit([model, "not a model"])
    broken = nn.RNN(1, 2)
    with torch.no_grad():
        broken.weight_hh_l0[0, 0] = float("nan")
    with pytest.raises(ValueError, match="model 1: parameter 'weight_hh_l0' holds NaN"):
        WeightStatistics().fit([model, broken])
    with pytest.raises(ValueError, match="parameters must be one of .*got 'some'"):
        WeightStatistics(parameters="some").fit([model])
    with pytest.raises(ValueError, match="model 0: .*has no submodule 'core'"):
        WeightStatistics(parameters="recurrent", rnn="core").fit([Classifier()])
    with pytest.raises(TypeError, match="model 0: Linear contains no recurrent module"):
        WeightStatistics(parameters="recurrent").fit([nn.Linear(2, 2)])


def test_recurrent_module_finds_the_core():
    torch.manual_seed(0)
    gru = nn.GRU(2, 3)
    assert recurrent_module(gru) == (None, gru)
    model = Classifier()
    name, core = recurrent_module(model)
    assert name == "rnn" and core is model.rnn
    two = nn.ModuleDict({"a": nn.GRU(2, 3), "b": nn.LSTMCell(2, 3)})
    with pytest.raises(ValueError, match="contains 2 recurrent modules: 'a' \\(GRU\\), 'b'"):
        recurrent_module(two)
    assert recurrent_module(two, rnn="b") == ("b", two["b"])
    with pytest.raises(TypeError, match="submodule 'fc' is a Linear"):
        recurrent_module(model, rnn="fc")
    with pytest.raises(TypeError, match="rnn must be an attribute path"):
        recurrent_module(model, rnn=3)
    with pytest.raises(TypeError, match="expected a PyTorch recurrent model"):
        recurrent_module(np.zeros(3))
