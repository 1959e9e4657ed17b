"""Each metric against scikit-learn, scipy or a re-derivation written here, plus its edge cases.

The metrics are implemented in numpy (sandmle_jax/tasks/metrics.py); these references are
independent of that code.
"""

import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from sandmle_jax.tasks import metrics

SEEDS = range(5)

DIRECTIONS = {  # name -> lower_is_better
    "accuracy": False, "balanced_accuracy": False, "f1": False, "f1_macro": False,
    "f1_micro": False, "mcc": False, "quadratic_weighted_kappa": False, "roc_auc": False,
    "multiclass_roc_auc": False, "mean_columnwise_roc_auc": False, "log_loss": True,
    "multiclass_log_loss": True, "rmse": True, "rmsle": True, "mean_columnwise_rmse": True,
    "mean_columnwise_rmsle": True, "mae": True, "r2": False, "mape": True, "spearman": False,
    "pearson": False, "map@k": False, "ndcg@k": False,
}


def metric(name):
    return metrics.get_metric(name)


def binary_labels(rng, n):
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]  # both classes present
    return y


def class_probabilities(rng, n, c):
    p = rng.random((n, c)) + 0.05
    return p / p.sum(axis=1, keepdims=True)


# ---- registry -------------------------------------------------------------------------------


def test_every_metric_and_its_direction():
    assert metrics.metric_names() == sorted(DIRECTIONS)
    for name, lower in DIRECTIONS.items():
        resolved = metric(name.replace("@k", "@3"))
        assert resolved.lower_is_better is lower, name


def test_parametrised_names():
    assert metric("map@5").k == 5 and metric("map@5").name == "map@5"
    assert metric("ndcg@10").k == 10 and metric("ndcg@10").kind == metrics.Kind.ITEM_SCORES
    assert metric("map@5") == metric("map@5")
    for bad in ("map@0", "map@k", "map@-1", "map@", "ndcg@2.5", "ROC_AUC", "auc"):
        with pytest.raises(KeyError, match="known metrics: accuracy, balanced_accuracy"):
            metric(bad)


def test_kinds_columns_and_numeric():
    assert metric("accuracy").kind == metrics.Kind.LABEL and not metric("accuracy").numeric
    assert not metric("map@5").numeric and metric("map@5").kind == metrics.Kind.RANKED_LIST
    assert metric("quadratic_weighted_kappa").kind == metrics.Kind.ORDINAL
    assert metric("roc_auc").numeric and metric("roc_auc").kind == metrics.Kind.PROBABILITY
    multi = {n for n in DIRECTIONS if metric(n.replace("@k", "@3")).multi_column}
    assert multi == {"multiclass_roc_auc", "mean_columnwise_roc_auc", "multiclass_log_loss",
                     "mean_columnwise_rmse", "mean_columnwise_rmsle", "ndcg@k"}


def test_register_metric_is_a_decorator(monkeypatch):
    monkeypatch.setattr(metrics, "_METRICS", dict(metrics._METRICS))

    @metrics.register_metric("max_error", lower_is_better=True, kind=metrics.Kind.VALUE)
    def _max_error(truth, pred):
        return float(np.max(np.abs(truth - pred)))

    assert "max_error" in metrics.metric_names()
    assert metric("max_error")([1.0, 2.0, 3.0], [1.5, 2.0, 0.0]) == 3.0
    with pytest.raises(ValueError, match="already registered"):
        metrics.register_metric("rmse", lower_is_better=True, kind=metrics.Kind.VALUE)
    with pytest.raises(ValueError, match="always has multi_column"):
        metrics.register_metric("x", lower_is_better=True, kind=metrics.Kind.LABEL,
                                multi_column=True)


# ---- classification against scikit-learn ---------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_label_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = 200
    names = np.array(["cat", "dog", "eel", "fox"])
    y = names[rng.integers(0, 3, n)]
    pred = np.where(rng.random(n) < 0.6, y, names[rng.integers(0, 4, n)])  # "fox" only predicted
    assert metric("accuracy")(y, pred) == pytest.approx(skm.accuracy_score(y, pred))
    with pytest.warns(UserWarning):  # sklearn warns about the predicted-only class
        expected = skm.balanced_accuracy_score(y, pred)
    assert metric("balanced_accuracy")(y, pred) == pytest.approx(expected)
    assert metric("f1_macro")(y, pred) == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert metric("f1_micro")(y, pred) == pytest.approx(skm.f1_score(y, pred, average="micro"))
    assert metric("mcc")(y, pred) == pytest.approx(skm.matthews_corrcoef(y, pred))


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_label_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = binary_labels(rng, 150)
    pred = np.where(rng.random(150) < 0.7, y, 1 - y)
    assert metric("f1")(y, pred) == pytest.approx(skm.f1_score(y, pred))
    assert metric("mcc")(y, pred) == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert metric("accuracy")(y, pred) == pytest.approx(skm.accuracy_score(y, pred))
    # Text labels, floats and ints are the same labels.
    assert metric("f1")(y.astype(str), pred.astype(float)) == pytest.approx(
        skm.f1_score(y, pred))
    assert metric("accuracy")(y.astype(float), pred.astype(str).astype(object)) == pytest.approx(
        skm.accuracy_score(y, pred))


def test_labels_compare_across_dtypes():
    assert metric("accuracy")(np.array([1.0, 2.0, 3.0]), np.array(["1", "2", "4"],
                                                                   dtype=object)) == pytest.approx(2 / 3)
    assert metric("accuracy")(np.array(["a", "1"], dtype=object), np.array([1.0, 1.0])) == 0.5
    assert metric("f1_macro")([0, 1], ["0", "1"]) == 1.0


def test_mcc_constant_predictions_score_zero():
    y = np.array([0, 1, 1, 2, 0])
    assert metric("mcc")(y, np.zeros(5)) == 0.0 == skm.matthews_corrcoef(y, np.zeros(5))


@pytest.mark.parametrize("seed", SEEDS)
def test_quadratic_weighted_kappa_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, 300)
    pred = np.clip(y + rng.integers(-2, 3, 300), 0, 7)
    labels = np.arange(min(y.min(), pred.min()), max(y.max(), pred.max()) + 1)
    expected = skm.cohen_kappa_score(y, pred, weights="quadratic", labels=labels)
    assert metric("quadratic_weighted_kappa")(y, pred.astype(float)) == pytest.approx(expected)


def test_quadratic_weighted_kappa_keeps_grade_gaps():
    """Grades 0, 1, 3: an error of 1 vs 3 weighs 4 (Kaggle), not 1 (sklearn's default labels)."""
    y = np.array([0, 1, 3, 3, 1, 0])
    pred = np.array([0, 3, 1, 3, 1, 1])
    kaggle = skm.cohen_kappa_score(y, pred, weights="quadratic", labels=[0, 1, 2, 3])
    compressed = skm.cohen_kappa_score(y, pred, weights="quadratic")
    assert kaggle != pytest.approx(compressed)
    assert metric("quadratic_weighted_kappa")(y, pred) == pytest.approx(kaggle)


def test_quadratic_weighted_kappa_huge_grades_cost_no_memory():
    y = np.array([0, 1, 2, 3])
    score = metric("quadratic_weighted_kappa")(y, np.array([0, 1, 2, 10**12]))
    observed = (10**12 - 3) ** 2
    pairs = sum((a - b) ** 2 for a in [0, 1, 2, 3] for b in [0, 1, 2, 10**12]) / 4
    assert score == pytest.approx(1 - observed / pairs)


# ---- probabilities against scikit-learn -----------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_auc_and_log_loss_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = binary_labels(rng, 300)
    p = np.clip(0.3 * y + 0.7 * rng.random(300), 0.01, 0.99)
    tied = np.round(p, 1)  # many ties: they must count one half
    assert metric("roc_auc")(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert metric("roc_auc")(y, tied) == pytest.approx(skm.roc_auc_score(y, tied), abs=1e-12)
    assert metric("log_loss")(y, p) == pytest.approx(skm.log_loss(y, p), rel=1e-12)


def test_log_loss_clips_like_kaggle():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.0, 1.0, 1.0, 0.3])
    eps = 1e-15
    by_hand = [-math.log(eps), -math.log(1 - (1 - eps)), -math.log(1 - eps), -math.log(0.7)]
    assert metric("log_loss")(y, p) == pytest.approx(sum(by_hand) / 4, rel=1e-9)
    assert metric("log_loss")(np.zeros(3), np.array([0.1, 0.2, 0.0])) == pytest.approx(
        -(math.log(0.9) + math.log(0.8) + math.log(1 - eps)) / 3)


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n, c = 250, 4
    y = rng.integers(0, c, n)
    y[:c] = np.arange(c)
    p = class_probabilities(rng, n, c)
    one_hot = np.eye(c)[y]
    expected_loss = skm.log_loss(y, p, labels=np.arange(c))
    expected_auc = skm.roc_auc_score(y, p, multi_class="ovr", average="macro")
    for truth in (y, one_hot, y.astype(float)):
        assert metric("multiclass_log_loss")(truth, p) == pytest.approx(expected_loss, rel=1e-12)
        assert metric("multiclass_roc_auc")(truth, p) == pytest.approx(expected_auc, abs=1e-12)


def test_multiclass_log_loss_clips_then_renormalises():
    y = np.array([0, 2, 1])
    p = np.array([[0.0, 2.0, 2.0], [0.2, 0.2, 0.6], [0.0, 0.0, 0.0]])
    eps = 1e-15
    losses = []
    for row, true_class in zip(p, y):
        clipped = [min(max(v, eps), 1 - eps) for v in row]
        losses.append(-math.log(clipped[true_class] / sum(clipped)))
    assert metric("multiclass_log_loss")(y, p) == pytest.approx(sum(losses) / 3, rel=1e-9)
    assert losses[2] == pytest.approx(math.log(3))  # an all-zero row becomes uniform


def test_multiclass_roc_auc_does_not_need_normalised_rows():
    rng = np.random.default_rng(0)
    y = np.array([0, 1, 2] * 20)
    p = rng.random((60, 3)) * 5
    per_class = [skm.roc_auc_score(y == k, p[:, k]) for k in range(3)]
    assert metric("multiclass_roc_auc")(y, p) == pytest.approx(np.mean(per_class))


@pytest.mark.parametrize("seed", SEEDS)
def test_mean_columnwise_roc_auc_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, (200, 5))
    y[:2] = [[0] * 5, [1] * 5]
    p = np.round(np.clip(0.4 * y + 0.6 * rng.random((200, 5)), 0, 1), 2)
    assert metric("mean_columnwise_roc_auc")(y, p) == pytest.approx(
        skm.roc_auc_score(y, p, average="macro"), abs=1e-12)


# ---- regression against scikit-learn and scipy ----------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_value_metrics_match_references(seed):
    rng = np.random.default_rng(seed)
    y = rng.gamma(2.0, 3.0, 400) + 0.1
    pred = np.abs(y + rng.normal(0, 2, 400))
    pred[:40] = np.round(pred[:40])  # some ties for the rank correlation
    assert metric("rmse")(y, pred) == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert metric("rmsle")(y, pred) == pytest.approx(skm.root_mean_squared_log_error(y, pred))
    assert metric("mae")(y, pred) == pytest.approx(skm.mean_absolute_error(y, pred))
    assert metric("r2")(y, pred) == pytest.approx(skm.r2_score(y, pred))
    assert metric("mape")(y, pred) == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert metric("pearson")(y, pred) == pytest.approx(stats.pearsonr(y, pred).statistic)
    assert metric("spearman")(y, pred) == pytest.approx(stats.spearmanr(y, pred).statistic)


@pytest.mark.parametrize("seed", SEEDS)
def test_mean_columnwise_value_metrics(seed):
    rng = np.random.default_rng(seed)
    y = rng.gamma(2.0, 3.0, (100, 3))
    pred = np.abs(y + rng.normal(0, 1, (100, 3)))
    columns = range(3)
    assert metric("mean_columnwise_rmsle")(y, pred) == pytest.approx(
        np.mean([skm.root_mean_squared_log_error(y[:, c], pred[:, c]) for c in columns]))
    assert metric("mean_columnwise_rmse")(y, pred) == pytest.approx(
        np.mean([skm.root_mean_squared_error(y[:, c], pred[:, c]) for c in columns]))
    # One target column given as (n,) is a one-column table.
    assert metric("mean_columnwise_rmsle")(y[:, 0], pred[:, 0]) == pytest.approx(
        skm.root_mean_squared_log_error(y[:, 0], pred[:, 0]))


def test_single_column_metrics_take_an_n_by_1_column():
    y = np.array([[1.0], [2.0], [4.0]])
    assert metric("rmse")(y, np.array([1.0, 2.0, 3.0])) == pytest.approx(math.sqrt(1 / 3))


@pytest.mark.parametrize("name", ["pearson", "spearman"])
def test_correlation_of_constant_predictions_is_zero(name):
    assert metric(name)([1.0, 2.0, 3.0, 5.0], [0.7, 0.7, 0.7, 0.7]) == 0.0


@pytest.mark.parametrize("name", ["pearson", "spearman", "r2"])
def test_constant_answers_are_undefined(name):
    with pytest.raises(metrics.MetricUndefined, match="answers are constant"):
        metric(name)([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])


# ---- ranking --------------------------------------------------------------------------------


def reference_apk(relevant, ranked, k):
    """Average precision at k: sum of precision@i at each first occurrence of a relevant id."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    ranked = list(ranked)[:k]
    first = [item in relevant and item not in ranked[:i] for i, item in enumerate(ranked)]
    precisions = [sum(first[:i + 1]) / (i + 1) for i in range(len(ranked))]
    return sum(p for p, hit in zip(precisions, first) if hit) / min(len(relevant), k)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_map_at_k_matches_re_derivation(seed, k):
    rng = np.random.default_rng(seed)
    items = [f"i{j}" for j in range(12)]
    truth, pred = [], []
    for _ in range(60):
        truth.append(" ".join(rng.choice(items, rng.integers(0, 4), replace=False)))
        pred.append(" ".join(rng.choice(items, rng.integers(0, 8), replace=True)))
    expected = np.mean([reference_apk(t.split(), p.split(), k) for t, p in zip(truth, pred)])
    assert metric(f"map@{k}")(truth, pred) == pytest.approx(expected)


def test_map_at_k_by_hand():
    # Row 1: hits at ranks 1 and 3 -> (1/1 + 2/3) / 2. Row 2: hit at rank 2 -> (1/2) / 1.
    # Row 3: duplicate "a" counts once -> 1/1. Row 4: empty prediction. Row 5: hit past k.
    truth = ["a b", "c", "a", "z", "q"]
    pred = ["a x b", "d c", "a a", "", "w e r q"]
    assert metric("map@3")(truth, pred) == pytest.approx(((1 + 2 / 3) / 2 + 0.5 + 1 + 0 + 0) / 5)
    # Bare numbers (a one-id column that a CSV reader typed as numbers) are ids.
    assert metric("map@2")(["7 8", "9"], np.array([7.0, 9.0], dtype=object)) == pytest.approx(0.75)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 3, 10])
def test_ndcg_at_k_matches_sklearn(seed, k):
    rng = np.random.default_rng(seed)
    relevance = rng.integers(0, 4, (80, 6)).astype(float)
    relevance[0] = 0  # an all-irrelevant row scores 0 in sklearn's convention
    scores = rng.integers(0, 4, (80, 6)).astype(float)  # many ties: averaged
    assert metric(f"ndcg@{k}")(relevance, scores) == pytest.approx(
        skm.ndcg_score(relevance, scores, k=k), abs=1e-12)


# ---- answers that make a metric undefined ---------------------------------------------------


@pytest.mark.parametrize("name,truth,pred,match", [
    ("roc_auc", [1, 1, 1], [0.2, 0.5, 0.9], "single class"),
    ("roc_auc", [0, 1, 2], [0.2, 0.5, 0.9], "not 0 or 1"),
    ("roc_auc", [0, np.nan, 1], [0.2, 0.5, 0.9], "not finite"),
    ("log_loss", [0, 0.5, 1], [0.2, 0.5, 0.9], "not 0 or 1"),
    ("multiclass_roc_auc", [0, 0, 1], [[0.5, 0.4, 0.1]] * 3, r"classes \[2\] never occur"),
    ("multiclass_log_loss", [0, 3, 1], [[0.5, 0.4, 0.1]] * 3, "beyond the 3 class columns"),
    ("multiclass_log_loss", [[1, 1, 0], [0, 1, 0]], [[0.5, 0.4, 0.1]] * 2, "not one-hot"),
    ("mean_columnwise_roc_auc", [[0, 1], [1, 1]], [[0.5, 0.4]] * 2, r"columns \[1\]"),
    ("mcc", ["a", "a"], ["a", "b"], "single class"),
    ("f1", [0, 0, 0], [0, 1, 0], "no positive"),
    ("f1", [0, 2, 1], [0, 1, 0], "not 0 or 1"),
    ("quadratic_weighted_kappa", [2, 2, 2], [1, 2, 3], "constant"),
    ("quadratic_weighted_kappa", [1.5, 2, 2], [1, 2, 3], "not whole numbers"),
    ("mape", [1.0, 0.0, 2.0], [1.0, 1.0, 1.0], "are 0"),
    ("rmsle", [1.0, -1.0], [1.0, 1.0], "negative"),
    ("accuracy", ["a", None, "b"], ["a", "b", "b"], "no label"),
    ("ndcg@3", [[1.0, -1.0], [0.0, 1.0]], [[0.1, 0.2]] * 2, "negative"),
    ("ndcg@3", [1.0, 2.0], [0.1, 0.2], "at least 2 item columns"),
    ("rmse", [], [], "no rows"),
])
def test_answers_problems_raise_metric_undefined(name, truth, pred, match):
    with pytest.raises(metrics.MetricUndefined, match=match) as info:
        metric(name)(np.asarray(truth, dtype=object if name == "accuracy" else None),
                     np.asarray(pred))
    assert not isinstance(info.value, metrics.PredictionError)
    assert str(info.value).startswith(f"{name}: ")


def test_answers_are_blamed_before_predictions():
    with pytest.raises(metrics.MetricUndefined):
        metric("roc_auc")([1, 1, 1], [np.nan, 2.0, 0.5])


def test_misaligned_rows_are_the_callers_bug():
    with pytest.raises(ValueError, match="align predictions") as info:
        metric("rmse")([1.0, 2.0, 3.0], [1.0, 2.0])
    assert not isinstance(info.value, (metrics.PredictionError, metrics.MetricUndefined))


# ---- predictions the metric cannot use ------------------------------------------------------


@pytest.mark.parametrize("name,truth,pred,match,rows", [
    ("roc_auc", [0, 1, 0], [0.2, np.nan, 0.1], "not finite", (1,)),
    ("rmse", [1.0, 2.0, 3.0], [1.0, np.inf, -np.inf], "not finite", (1, 2)),
    ("rmse", [1.0, 2.0], np.array(["1.5", "abc"], dtype=object), "not numbers.*'abc'", (1,)),
    ("log_loss", [0, 1, 0], [0.2, 1.3, -0.1], r"outside \[0, 1\]", (1, 2)),
    ("roc_auc", [0, 1, 0], [0.2, 1.0001, 0.1], r"outside \[0, 1\]", (1,)),
    ("mean_columnwise_roc_auc", [[0, 1], [1, 0]], [[0.2, 0.3], [0.4, 2.0]],
     r"row 1 column 1: 2", (1,)),
    ("multiclass_log_loss", [0, 1], [[0.2, 0.8], [-0.1, 1.1]], "negative", (1,)),
    ("rmsle", [1.0, 2.0, 3.0], [1.0, -0.5, 3.0], "negative", (1,)),
    ("mean_columnwise_rmsle", [[1.0, 2.0]] * 2, [[1.0, 2.0], [1.0, -2.0]], "negative", (1,)),
    ("quadratic_weighted_kappa", [1, 2, 3], [1.0, 2.5, 3.0], "not whole numbers", (1,)),
    ("f1", [0, 1, 1], [0, 1, 2], "not 0 or 1", (2,)),
    ("f1", [0, 1, 1], np.array(["0", "yes", "1"], dtype=object), "not 0 or 1", (1,)),
    ("accuracy", ["a", "b"], np.array(["a", ""], dtype=object), "no label", (1,)),
    ("accuracy", ["a", "b"], np.array(["a", None], dtype=object), "no label", (1,)),
    ("map@5", ["a", "b"], ["a b", "c,d"], "space-separated", (1,)),
    ("map@5", ["a", "b"], np.array(["a b", b"c"], dtype=object), "space-separated", (1,)),
    ("ndcg@5", [[1.0, 0.0]] * 2, [[0.1, np.nan], [0.1, 0.2]], "not finite", (0,)),
])
def test_bad_predictions_raise_prediction_error(name, truth, pred, match, rows):
    with pytest.raises(metrics.PredictionError, match=match) as info:
        metric(name)(np.asarray(truth), pred if isinstance(pred, np.ndarray) else np.asarray(pred))
    assert info.value.rows == rows
    assert str(info.value).startswith(f"{name}: ")
    with pytest.raises(metrics.PredictionError, match=match):  # check() alone finds it too
        metric(name).check(pred if isinstance(pred, np.ndarray) else np.asarray(pred))


@pytest.mark.parametrize("name,truth,pred,match", [
    ("rmse", [1.0, 2.0], [[1.0, 2.0, 3.0]] * 2, "need one column .* got 3 columns"),
    ("multiclass_log_loss", [[1, 0, 0], [0, 1, 0]], [[0.5, 0.5]] * 2, "2 columns but the answers have 3"),
    ("mean_columnwise_roc_auc", [[0, 1], [1, 0]], [[0.5, 0.5, 0.2]] * 2, "3 columns but the answers have 2"),
    ("ndcg@2", [[1.0, 0.0, 2.0]] * 2, [[0.5, 0.5]] * 2, "2 columns but the answers have 3"),
    ("mean_columnwise_rmse", [[1.0, 0.0]] * 2, [1.0, 2.0], "1 columns but the answers have 2"),
    ("accuracy", ["a", "b"], np.zeros((2, 2, 2)), "need one column"),
])
def test_wrong_number_of_columns(name, truth, pred, match):
    with pytest.raises(metrics.PredictionError, match=match):
        metric(name)(np.asarray(truth), np.asarray(pred))


def test_many_bad_rows_are_summarised():
    pred = np.full(100, np.nan)
    with pytest.raises(metrics.PredictionError, match=r"100 of 100 rows .*row 4: nan, \.\.\.") as info:
        metric("rmse").check(pred)
    assert info.value.rows == (0, 1, 2, 3, 4)


def test_overflowing_score_is_the_predictions_fault():
    with pytest.raises(metrics.PredictionError, match="overflowed"):
        metric("rmse")([1.0, 2.0], [1e200, 2.0])


def test_check_passes_good_predictions_and_returns_nothing():
    assert metric("roc_auc").check(np.array([0.1, 0.9])) is None
    assert metric("map@3").check(["a b", "", None]) is None
    assert metric("multiclass_log_loss").check(np.eye(3)[[0, 2]], np.array([0, 2])) is None


def test_check_direction_names_the_right_direction():
    assert metrics.check_direction("rmse", True).name == "rmse"
    assert metrics.check_direction("map@3", False).k == 3
    with pytest.raises(ValueError, match=r"contradicts metric 'roc_auc'; set it to False"):
        metrics.check_direction("roc_auc", True)
    with pytest.raises(KeyError, match="unknown metric"):
        metrics.check_direction("accuracyy", False)
