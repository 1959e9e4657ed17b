"""Metric registry: how a submission's predictions are scored against a task's hidden answers.

`get_metric("roc_auc")` (or `get_metric("map@5")`) returns a `Metric`: its name, its direction,
the `Kind` of values a submission's target columns must hold, and `__call__(y_true, y_pred)`.
A call checks both sides before it scores, and blames the right party:

* the answers (y_true) come from the task: NaN in answers.csv, a single class under roc_auc,
  constant targets under r2 or pearson, zeros under mape raise `MetricUndefined` - a problem of
  the task or of our grader, never of the submission;
* the predictions (y_pred) come from the agent: NaN, a probability of 1.2, a negative value under
  rmsle, a grade of 2.5, an unparsable ranked list raise `PredictionError`, whose message names
  the rows (0-based positions) and the fix;
* y_true and y_pred of different lengths are the caller's bug (rows must be aligned by id
  first): a plain `ValueError`.

The answers are checked first, so a broken task is never reported as a bad submission.

Scores are computed here in numpy rather than by calling scikit-learn, so that the tests'
comparison with scikit-learn is a second opinion rather than a tautology, and so that grading
100,000 rows costs milliseconds. Where references disagree, each metric's docstring says which
convention it follows.
"""

import contextlib
import dataclasses
import enum
import math
import re
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

# Kaggle's log-loss clipping: predictions are clipped to [eps, 1 - eps] before the log.
LOG_LOSS_EPS = 1e-15
_MAX_LISTED = 5  # offending rows quoted in an error message


class _RowsError(ValueError):
    """A ValueError that also carries the first few offending row positions (0-based)."""

    def __init__(self, message: str, rows: Sequence[int] = ()):
        super().__init__(message)
        self.rows = tuple(int(r) for r in rows)


class PredictionError(_RowsError):
    """A submission's values are unusable for this metric; the message says which rows/values and why.

    `rows` holds the first few offending row positions (0-based, in the order given to the metric),
    so a caller that knows the ids can name them.
    """


class MetricUndefined(_RowsError):
    """The answers make this metric undefined or unusable (one class only for roc_auc, NaN in
    answers.csv, constant targets for r2...): the task's or grader's problem, not the submission's."""


class Kind(str, enum.Enum):
    """What a submission's target column(s) hold; decides how predictions are checked."""

    LABEL = "label"  # one column of class labels (ints or strings)
    ORDINAL = "ordinal"  # one column of integer grades
    PROBABILITY = "probability"  # one column, P(positive) in [0, 1]; answers 0/1
    CLASS_PROBABILITIES = "class_probabilities"  # one non-negative column per class, in order
    MULTILABEL_PROBABILITIES = "multilabel_probabilities"  # one column per label, each in [0, 1]
    VALUE = "value"  # one or more numeric columns
    RANKED_LIST = "ranked_list"  # one column of space-separated item ids, best first
    ITEM_SCORES = "item_scores"  # one column per item holding a score; answers graded relevance


_MULTI_COLUMN_KINDS = frozenset({Kind.CLASS_PROBABILITIES, Kind.MULTILABEL_PROBABILITIES,
                                 Kind.ITEM_SCORES})
_NON_NUMERIC_KINDS = frozenset({Kind.LABEL, Kind.RANKED_LIST})


@dataclasses.dataclass(frozen=True)
class Metric:
    """One registered metric. Call it as `metric(y_true, y_pred) -> float`.

    Arrays: single-column metrics take (n,) (or (n, 1)); multi-column ones take (n, c) with
    columns in the task's target_columns order; RANKED_LIST takes n strings. Rows must already
    be aligned by id.
    """

    name: str
    lower_is_better: bool
    kind: Kind
    multi_column: bool  # whether the submission has one target column per class/label/item/target
    _score: Callable[..., float] = dataclasses.field(repr=False)
    _check_answers: Callable[[np.ndarray], None] | None = dataclasses.field(default=None, repr=False)
    _check_predictions: Callable[[np.ndarray], None] | None = dataclasses.field(default=None,
                                                                                 repr=False)
    k: int | None = None  # the cutoff of a parametrised metric (map@k, ndcg@k)

    @property
    def numeric(self) -> bool:
        """Whether the submission's target columns must parse as numbers."""
        return self.kind not in _NON_NUMERIC_KINDS

    @property
    def convention(self) -> str:
        """The scoring function's docstring on one line: which convention the score follows."""
        return " ".join((self._score.__doc__ or "").split())

    def check(self, y_pred, y_true=None) -> None:
        """Raises PredictionError if y_pred cannot be scored (and, given y_true, MetricUndefined
        if the answers' shape or values make the metric unusable)."""
        with self._named_errors():
            self._prepare(y_true, y_pred)

    def __call__(self, y_true, y_pred) -> float:
        """The score of y_pred against y_true, after `check`."""
        with self._named_errors():
            truth, pred = self._prepare(y_true, y_pred)
            with np.errstate(over="ignore"):  # overflow from absurd magnitudes is caught below
                score = (self._score(truth, pred) if self.k is None
                         else self._score(truth, pred, self.k))
            if not math.isfinite(score):
                raise PredictionError(f"the score overflowed to {score}; predictions of such "
                                      f"magnitude are not usable, keep them in the targets' range")
        return float(score)

    def _prepare(self, y_true, y_pred):
        """Both sides in the metric's normal form, answers checked before predictions."""
        truth = None
        if y_true is not None:
            truth = _ANSWER_FORMS[self.kind](_shaped(y_true, self, MetricUndefined, "answers"))
            if self._check_answers is not None:
                self._check_answers(truth)
        pred = _PREDICTION_FORMS[self.kind](_shaped(y_pred, self, PredictionError, "predictions"))
        if self._check_predictions is not None:
            self._check_predictions(pred)
        if truth is not None:
            _check_alignment(truth, pred, self.kind)
        return truth, pred

    @contextlib.contextmanager
    def _named_errors(self):
        """Prefixes this metric's name to the PredictionError / MetricUndefined raised inside."""
        try:
            yield
        except _RowsError as e:
            raise type(e)(f"{self.name}: {e}", rows=e.rows) from None


# ---- registry -------------------------------------------------------------------------------

_METRICS: dict[str, Metric] = {}
_FAMILIES: dict[str, Metric] = {}  # "map" -> the template of map@K (k unset)
_FAMILY_NAME = re.compile(r"([a-z_]+)@(\d+)")


def register_metric(name: str, *, lower_is_better: bool, kind: Kind,
                    multi_column: bool | None = None,
                    check_answers: Callable[[np.ndarray], None] | None = None,
                    check_predictions: Callable[[np.ndarray], None] | None = None):
    """Decorator registering `fn(y_true, y_pred) -> float` as metric `name`.

    A name ending in "@k" registers a family parametrised by a cutoff, `fn(y_true, y_pred, k)`,
    reached as get_metric("name@5"). `multi_column` is only chosen for Kind.VALUE (default
    single column); other kinds fix it. `check_answers` raises MetricUndefined and
    `check_predictions` raises PredictionError for constraints beyond the kind's (e.g. rmsle's
    non-negative values); both get the arrays in normal form.
    """
    fixed = kind in _MULTI_COLUMN_KINDS
    if multi_column is None:
        multi_column = fixed
    elif kind != Kind.VALUE and multi_column != fixed:
        raise ValueError(f"metric {name!r}: kind {kind.value} always has multi_column={fixed}")
    family = name.endswith("@k")
    key = name[:-2] if family else name
    if key in _METRICS or key in _FAMILIES:
        raise ValueError(f"metric {name!r} is already registered")

    def decorator(fn: Callable[..., float]) -> Callable[..., float]:
        (_FAMILIES if family else _METRICS)[key] = Metric(
            name=name, lower_is_better=lower_is_better, kind=kind, multi_column=multi_column,
            _score=fn, _check_answers=check_answers, _check_predictions=check_predictions)
        return fn

    return decorator


def metric_names() -> list[str]:
    """Registered names, parametrised families spelled with a literal k ("map@k")."""
    return sorted([*_METRICS, *(f"{prefix}@k" for prefix in _FAMILIES)])


def get_metric(name: str) -> Metric:
    """The metric registered as `name`; "map@5" / "ndcg@10" pick a family's cutoff."""
    if name in _METRICS:
        return _METRICS[name]
    match = _FAMILY_NAME.fullmatch(name)
    if match and match[1] in _FAMILIES and int(match[2]) >= 1:
        k = int(match[2])
        return dataclasses.replace(_FAMILIES[match[1]], name=f"{match[1]}@{k}", k=k)
    raise KeyError(f"unknown metric {name!r}; known metrics: {', '.join(metric_names())} "
                   f"(in a name like map@k, k is a positive integer cutoff, e.g. map@5)")


def check_direction(name: str, lower_is_better: bool) -> Metric:
    """The metric `name`, after checking that a declared `lower_is_better` (task.json, a DNA, a
    leaderboard) agrees with it. KeyError: unknown name; ValueError: the direction is wrong."""
    metric = get_metric(name)
    if metric.lower_is_better != lower_is_better:
        raise ValueError(f"lower_is_better={lower_is_better} contradicts metric {name!r}; set "
                         f"it to {metric.lower_is_better}")
    return metric


# ---- shape and value checks -----------------------------------------------------------------


def _shaped(values, metric: Metric, error: type[_RowsError], side: str) -> np.ndarray:
    """(n,) for single-column metrics, (n, c) for multi-column ones; class-index answers stay 1-D."""
    array = np.asarray(values, dtype=object if metric.kind == Kind.RANKED_LIST else None)
    class_indices_allowed = metric.kind == Kind.CLASS_PROBABILITIES and error is MetricUndefined
    if metric.multi_column:
        if array.ndim == 1 and not class_indices_allowed:
            array = array[:, None]
        shape_ok = array.ndim == 2 or (array.ndim == 1 and class_indices_allowed)
    else:
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        shape_ok = array.ndim == 1
    if not shape_ok:
        columns = "one column per target" if metric.multi_column else "one column"
        got = f"{array.shape[1]} columns" if array.ndim == 2 else f"shape {array.shape}"
        raise error(f"{side} need {columns} ({metric.kind.value}), got {got}")
    if len(array) == 0:
        raise error(f"{side} have no rows")
    return array


def _format(value) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.6g}"
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 40 else text[:37] + "..."


def _reject(error: type[_RowsError], bad: np.ndarray, values: np.ndarray, problem: str,
            fix: str) -> None:
    """Raises `error` naming the rows where `bad` holds (a per-cell mask), if any."""
    row_mask = bad if bad.ndim == 1 else bad.any(axis=1)
    rows = np.flatnonzero(row_mask)
    if rows.size == 0:
        return
    shown = rows[:_MAX_LISTED]
    cells = []
    for row in shown:
        if bad.ndim == 1:
            cells.append(f"row {row}: {_format(values[row])}")
        else:
            column = int(np.argmax(bad[row]))
            cells.append(f"row {row} column {column}: {_format(values[row, column])}")
    more = ", ..." if rows.size > shown.size else ""
    raise error(f"{rows.size} of {len(row_mask)} rows {problem} ({'; '.join(cells)}{more}); {fix}",
                rows=shown)


def _floats(values: np.ndarray, error: type[_RowsError]) -> np.ndarray:
    """float64 values that are all finite, or `error` naming the rows that are not numbers."""
    try:
        out = values.astype(np.float64)
    except (TypeError, ValueError):  # name the cells that are not numbers
        out = np.full(values.shape, np.nan)
        unparsable = np.zeros(values.shape, dtype=bool)
        for index, value in np.ndenumerate(values):
            try:
                out[index] = float(value)
            except (TypeError, ValueError):
                unparsable[index] = True
        _reject(error, unparsable, values, "are not numbers", "write plain numbers")
    _reject(error, ~np.isfinite(out), out, "are not finite (NaN or inf)",
            "write a finite number in every row")
    return out


def _integers(values: np.ndarray, error: type[_RowsError]) -> np.ndarray:
    out = _floats(values, error)
    _reject(error, out != np.round(out), out, "are not whole numbers",
            "write integer grades (e.g. round the predictions)")
    return out


def _in_unit_interval(values: np.ndarray, error: type[_RowsError]) -> np.ndarray:
    out = _floats(values, error)
    _reject(error, (out < 0) | (out > 1), out, "are outside [0, 1]",
            "write probabilities between 0 and 1")
    return out


def _zero_one(values: np.ndarray, error: type[_RowsError]) -> np.ndarray:
    out = _floats(values, error)
    _reject(error, (out != 0) & (out != 1), out, "are not 0 or 1", "use 0/1 labels")
    return out


def _non_negative(values: np.ndarray, error: type[_RowsError]) -> np.ndarray:
    out = _floats(values, error)
    _reject(error, out < 0, out, "are negative", "write non-negative values (clip at 0)")
    return out


def _is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float | np.floating) and math.isnan(value)


def _labels(values: np.ndarray, error: type[_RowsError]) -> np.ndarray:
    if values.dtype.kind == "f":
        missing = np.isnan(values)
    elif values.dtype.kind in "biu":
        missing = np.zeros(len(values), dtype=bool)
    else:
        missing = np.fromiter((_is_missing(v) for v in values), dtype=bool, count=len(values))
    _reject(error, missing, values, "have no label", "write a class label in every row")
    return values


def _class_answers(values: np.ndarray, error: type[_RowsError]) -> np.ndarray:
    """Class indices (n,) in [0, c), or one-hot rows (n, c), each as given."""
    if values.ndim == 1:
        out = _integers(values, error)
        _reject(error, out < 0, out, "are negative class indices",
                "store 0-based class indices or one column per class")
        return out.astype(np.int64)
    out = _zero_one(values, error)
    _reject(error, out.sum(axis=1) != 1, out, "are not one-hot (exactly one 1 per row)",
            "store one 1 per row, in the column of the true class")
    return out


def _ranked_lists(values: np.ndarray, error: type[_RowsError]) -> list[tuple[str, ...]]:
    """Each cell as a tuple of ids: space-separated strings; a bare number is one id; empty or
    missing cells are empty lists. Commas or semicolons mean the wrong separator."""
    parsed, bad = [], np.zeros(len(values), dtype=bool)
    for row, cell in enumerate(values):
        if isinstance(cell, str):  # the common case first: it costs most of the time
            bad[row] = "," in cell or ";" in cell
            parsed.append(tuple(cell.split()))
        elif _is_missing(cell):
            parsed.append(())
        elif isinstance(cell, int | np.integer) or (
                isinstance(cell, float | np.floating) and float(cell).is_integer()):
            parsed.append((str(int(cell)),))
        else:
            parsed.append(())
            bad[row] = True
    _reject(error, bad, values, "are not space-separated id lists",
            "write the ids best first, separated by single spaces, e.g. '12 7 3'")
    return parsed


_PREDICTION_FORMS: dict[Kind, Callable[[np.ndarray], object]] = {
    Kind.LABEL: lambda v: _labels(v, PredictionError),
    Kind.ORDINAL: lambda v: _integers(v, PredictionError),
    Kind.PROBABILITY: lambda v: _in_unit_interval(v, PredictionError),
    Kind.CLASS_PROBABILITIES: lambda v: _non_negative(v, PredictionError),
    Kind.MULTILABEL_PROBABILITIES: lambda v: _in_unit_interval(v, PredictionError),
    Kind.VALUE: lambda v: _floats(v, PredictionError),
    Kind.RANKED_LIST: lambda v: _ranked_lists(v, PredictionError),
    Kind.ITEM_SCORES: lambda v: _floats(v, PredictionError),
}

_ANSWER_FORMS: dict[Kind, Callable[[np.ndarray], object]] = {
    Kind.LABEL: lambda v: _labels(v, MetricUndefined),
    Kind.ORDINAL: lambda v: _integers(v, MetricUndefined),
    Kind.PROBABILITY: lambda v: _zero_one(v, MetricUndefined),
    Kind.CLASS_PROBABILITIES: lambda v: _class_answers(v, MetricUndefined),
    Kind.MULTILABEL_PROBABILITIES: lambda v: _zero_one(v, MetricUndefined),
    Kind.VALUE: lambda v: _floats(v, MetricUndefined),
    Kind.RANKED_LIST: lambda v: _ranked_lists(v, MetricUndefined),
    Kind.ITEM_SCORES: lambda v: _non_negative(v, MetricUndefined),
}


def _check_alignment(truth, pred, kind: Kind) -> None:
    if len(truth) != len(pred):
        raise ValueError(f"{len(truth)} answer rows but {len(pred)} prediction rows: align "
                         f"predictions to the answers by id before scoring")
    if kind == Kind.CLASS_PROBABILITIES and truth.ndim == 1:
        _reject(MetricUndefined, truth >= pred.shape[1], truth,
                f"hold class indices beyond the {pred.shape[1]} class columns",
                "make target_columns list every class")
    elif kind in _MULTI_COLUMN_KINDS or (kind == Kind.VALUE and truth.ndim == 2):
        if truth.shape[1] != pred.shape[1]:
            raise PredictionError(f"predictions have {pred.shape[1]} columns but the answers "
                                  f"have {truth.shape[1]}: write one column per target column")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise MetricUndefined(message)


def _two_classes(truth: np.ndarray) -> None:
    _require(np.unique(truth).size >= 2, "answers hold a single class; the metric needs both "
             "classes among the answers (fix the task's test split)")


def _each_column_two_classes(truth: np.ndarray) -> None:
    single = [c for c in range(truth.shape[1]) if np.unique(truth[:, c]).size < 2]
    _require(not single, f"answer columns {single} hold a single class; each column needs both "
             "0 and 1 (fix the task's test split or drop those columns)")


def _not_constant(truth: np.ndarray) -> None:
    _require(np.ptp(truth) > 0, "answers are constant; the metric needs varying targets")


def _at_least_two_labels(truth: np.ndarray) -> None:
    _require(np.unique(_as_comparable(truth)).size >= 2,
             "answers hold a single class; the metric needs at least two")


# ---- classification -------------------------------------------------------------------------


def _as_comparable(labels: np.ndarray) -> np.ndarray:
    """Labels as float64 when every one parses as a number, else as strings (1.0 -> "1")."""
    try:
        return np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError):
        return np.array([_label_text(v) for v in labels], dtype=str)


def _label_text(value) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)


def _common_labels(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sides in one dtype: numbers when both parse as numbers ("1" == 1 == 1.0), else text."""
    t, p = _as_comparable(truth), _as_comparable(pred)
    if t.dtype.kind != p.dtype.kind:
        t = np.array([_label_text(v) for v in truth], dtype=str)
        p = np.array([_label_text(v) for v in pred], dtype=str)
    return t, p


def _confusion(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(c, c) counts over the union of labels, rows = true class, columns = predicted class."""
    t, p = _common_labels(truth, pred)
    classes, codes = np.unique(np.concatenate([t, p]), return_inverse=True)
    c = classes.size
    return np.bincount(codes[:len(t)] * c + codes[len(t):], minlength=c * c).reshape(c, c)


@register_metric("accuracy", lower_is_better=False, kind=Kind.LABEL)
def _accuracy(truth, pred) -> float:
    t, p = _common_labels(truth, pred)
    return float(np.mean(t == p))


@register_metric("balanced_accuracy", lower_is_better=False, kind=Kind.LABEL)
def _balanced_accuracy(truth, pred) -> float:
    """Mean recall over the classes present in the answers (scikit-learn's definition: labels
    that appear only in the predictions add no term)."""
    confusion = _confusion(truth, pred)
    support = confusion.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(confusion)[present] / support[present]))


def _binary_labels(labels: np.ndarray, error: type[_RowsError]) -> np.ndarray:
    """Labels as booleans (1 -> True) when each is 0 or 1 (as a number or its text)."""
    comparable = _as_comparable(labels)
    allowed = (0.0, 1.0) if comparable.dtype.kind == "f" else ("0", "1")
    _reject(error, ~np.isin(comparable, allowed), labels, "are not 0 or 1",
            "f1 scores the positive class 1: use 0/1 labels")
    return np.isin(comparable, allowed[1:])


def _binary_predictions(pred: np.ndarray) -> None:
    _binary_labels(pred, PredictionError)


def _binary_answers_with_positive(truth: np.ndarray) -> None:
    _require(_binary_labels(truth, MetricUndefined).any(), "answers hold no positive (1); f1 of "
             "the positive class is undefined (fix the task's test split)")


@register_metric("f1", lower_is_better=False, kind=Kind.LABEL,
                 check_answers=_binary_answers_with_positive,
                 check_predictions=_binary_predictions)
def _f1_binary(truth, pred) -> float:
    """F1 of the positive class 1; labels must be 0/1 (numbers or their text)."""
    t = _binary_labels(truth, MetricUndefined)
    p = _binary_labels(pred, PredictionError)
    tp = np.sum(t & p)
    return float(2 * tp / (2 * tp + np.sum(~t & p) + np.sum(t & ~p)))


@register_metric("f1_macro", lower_is_better=False, kind=Kind.LABEL)
def _f1_macro(truth, pred) -> float:
    """Unweighted mean of per-class F1 over the union of true and predicted labels
    (scikit-learn's default: a predicted label absent from the answers counts as an F1 of 0)."""
    confusion = _confusion(truth, pred)
    tp = np.diag(confusion)
    return float(np.mean(2 * tp / (confusion.sum(axis=0) + confusion.sum(axis=1))))


@register_metric("f1_micro", lower_is_better=False, kind=Kind.LABEL)
def _f1_micro(truth, pred) -> float:
    """F1 of the pooled counts; for single-label predictions it equals accuracy."""
    confusion = _confusion(truth, pred)
    tp = np.trace(confusion)
    fp = confusion.sum() - tp  # every wrong prediction is one false positive and one false negative
    return float(2 * tp / (2 * tp + 2 * fp))


@register_metric("mcc", lower_is_better=False, kind=Kind.LABEL,
                 check_answers=_at_least_two_labels)
def _mcc(truth, pred) -> float:
    """Matthews correlation (multi-class form). Constant predictions score 0, like scikit-learn;
    answers with a single class raise MetricUndefined."""
    confusion = _confusion(truth, pred).astype(np.float64)
    n = confusion.sum()
    true_counts, pred_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    covariance = np.trace(confusion) * n - true_counts @ pred_counts
    scale = math.sqrt((n * n - pred_counts @ pred_counts) * (n * n - true_counts @ true_counts))
    return float(covariance / scale) if scale > 0 else 0.0


@register_metric("quadratic_weighted_kappa", lower_is_better=False, kind=Kind.ORDINAL,
                 check_answers=_not_constant)
def _quadratic_weighted_kappa(truth, pred) -> float:
    """Cohen's kappa with weights (a - b)**2 on the grade values (Kaggle's definition: grades
    between the smallest and largest are all in the scale, so the answers 0, 1, 3 weigh a 1-vs-3
    error as 4, not as 1 the way scikit-learn's default `labels` would).

    Computed in closed form, with no confusion matrix, so huge grades cost no memory:
    observed = sum_i (t_i - p_i)^2, expected = sum_{i,j} (t_i - p_j)^2 / n.
    """
    centre = truth.mean()
    t, p = truth - centre, pred - centre
    n = len(t)
    observed = np.sum((t - p) ** 2)
    expected = np.sum(t * t) + np.sum(p * p) - 2 * np.sum(t) * np.sum(p) / n
    return float(1 - observed / expected)


# ---- probabilities --------------------------------------------------------------------------


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """P(a random positive outscores a random negative), ties counting 1/2: the Mann-Whitney
    statistic, which equals the trapezoidal area under the ROC curve."""
    n_pos = np.count_nonzero(positive)
    n_neg = positive.size - n_pos
    ranks = stats.rankdata(score)  # ties get the average rank
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@register_metric("roc_auc", lower_is_better=False, kind=Kind.PROBABILITY,
                 check_answers=_two_classes)
def _roc_auc(truth, pred) -> float:
    return _binary_auc(truth == 1, pred)


def _class_indices(truth: np.ndarray) -> np.ndarray:
    return truth if truth.ndim == 1 else np.argmax(truth, axis=1)


def _class_answers_two_classes(truth: np.ndarray) -> None:
    _two_classes(_class_indices(truth))


@register_metric("multiclass_roc_auc", lower_is_better=False, kind=Kind.CLASS_PROBABILITIES,
                 check_answers=_class_answers_two_classes)
def _multiclass_roc_auc(truth, pred) -> float:
    """One-vs-rest AUC of each class's column, averaged over classes (macro). Rows need not sum
    to 1 (each column is ranked on its own); with rows that do, it equals scikit-learn's
    roc_auc_score(multi_class="ovr"). Every class must occur in the answers."""
    indices = _class_indices(truth)
    classes = np.arange(pred.shape[1])
    absent = classes[np.bincount(indices, minlength=classes.size) == 0]
    _require(absent.size == 0, f"classes {absent.tolist()} never occur in the answers; one-vs-rest "
             "AUC needs every class present (fix the task's test split)")
    return float(np.mean([_binary_auc(indices == c, pred[:, c]) for c in classes]))


@register_metric("mean_columnwise_roc_auc", lower_is_better=False,
                 kind=Kind.MULTILABEL_PROBABILITIES, check_answers=_each_column_two_classes)
def _mean_columnwise_roc_auc(truth, pred) -> float:
    """Mean over label columns of each column's binary AUC (Kaggle's "mean column-wise AUC")."""
    return float(np.mean([_binary_auc(truth[:, c] == 1, pred[:, c])
                          for c in range(truth.shape[1])]))


@register_metric("log_loss", lower_is_better=True, kind=Kind.PROBABILITY)
def _log_loss(truth, pred) -> float:
    """Binary cross-entropy with Kaggle's clipping of p to [1e-15, 1 - 1e-15]; answers may hold
    a single class (log loss stays defined)."""
    p = np.clip(pred, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return float(-np.mean(truth * np.log(p) + (1 - truth) * np.log1p(-p)))


@register_metric("multiclass_log_loss", lower_is_better=True, kind=Kind.CLASS_PROBABILITIES)
def _multiclass_log_loss(truth, pred) -> float:
    """Kaggle's multi-class log loss: clip each probability to [1e-15, 1 - 1e-15], divide each
    row by its sum, then average -log p(true class) over rows.

    Answers are either 0-based class indices (n,) or one-hot rows (n, c) - the latter is how
    answers.csv stores one column per class.
    """
    p = np.clip(pred, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(p)), _class_indices(truth)])))


# ---- regression -----------------------------------------------------------------------------


def _rmse(truth, pred) -> float:
    return float(np.sqrt(np.mean((truth - pred) ** 2)))


def _rmsle(truth, pred) -> float:
    return float(np.sqrt(np.mean((np.log1p(pred) - np.log1p(truth)) ** 2)))


def _non_negative_answers(truth: np.ndarray) -> None:
    _non_negative(truth, MetricUndefined)


def _non_negative_predictions(pred: np.ndarray) -> None:
    _non_negative(pred, PredictionError)


register_metric("rmse", lower_is_better=True, kind=Kind.VALUE)(_rmse)
register_metric("rmsle", lower_is_better=True, kind=Kind.VALUE,
                check_answers=_non_negative_answers,
                check_predictions=_non_negative_predictions)(_rmsle)


@register_metric("mean_columnwise_rmse", lower_is_better=True, kind=Kind.VALUE,
                 multi_column=True)
def _mean_columnwise_rmse(truth, pred) -> float:
    """Mean over target columns of each column's RMSE (Kaggle's MCRMSE)."""
    return float(np.mean(np.sqrt(np.mean((truth - pred) ** 2, axis=0))))


@register_metric("mean_columnwise_rmsle", lower_is_better=True, kind=Kind.VALUE,
                 multi_column=True, check_answers=_non_negative_answers,
                 check_predictions=_non_negative_predictions)
def _mean_columnwise_rmsle(truth, pred) -> float:
    """Mean over target columns of each column's RMSLE."""
    return float(np.mean(np.sqrt(np.mean((np.log1p(pred) - np.log1p(truth)) ** 2, axis=0))))


@register_metric("mae", lower_is_better=True, kind=Kind.VALUE)
def _mae(truth, pred) -> float:
    return float(np.mean(np.abs(truth - pred)))


@register_metric("r2", lower_is_better=False, kind=Kind.VALUE, check_answers=_not_constant)
def _r2(truth, pred) -> float:
    """1 - SS_res / SS_tot. Constant answers raise MetricUndefined (scikit-learn would return
    0 or 1 there)."""
    return float(1 - np.sum((truth - pred) ** 2) / np.sum((truth - truth.mean()) ** 2))


def _non_zero_answers(truth: np.ndarray) -> None:
    _reject(MetricUndefined, truth == 0, truth, "are 0, where percentage error is undefined",
            "pick a metric other than mape for targets that can be 0")


@register_metric("mape", lower_is_better=True, kind=Kind.VALUE, check_answers=_non_zero_answers)
def _mape(truth, pred) -> float:
    """mean(|t - p| / |t|) as a fraction (0.1 = 10%), like scikit-learn; answers equal to 0
    raise MetricUndefined instead of scikit-learn's division by machine epsilon."""
    return float(np.mean(np.abs(truth - pred) / np.abs(truth)))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0.0 when b is constant (it carries no information about a)."""
    if np.ptp(b) == 0:
        return 0.0
    a, b = a - a.mean(), b - b.mean()
    return float(np.clip(a @ b / math.sqrt((a @ a) * (b @ b)), -1.0, 1.0))


@register_metric("pearson", lower_is_better=False, kind=Kind.VALUE, check_answers=_not_constant)
def _pearson(truth, pred) -> float:
    """Pearson correlation. Constant predictions score 0.0 (no linear information; scipy returns
    NaN); constant answers raise MetricUndefined."""
    return _correlation(truth, pred)


@register_metric("spearman", lower_is_better=False, kind=Kind.VALUE, check_answers=_not_constant)
def _spearman(truth, pred) -> float:
    """Pearson correlation of average ranks. Constant predictions score 0.0 (scipy returns NaN);
    constant answers raise MetricUndefined."""
    return _correlation(stats.rankdata(truth), stats.rankdata(pred))


# ---- ranking --------------------------------------------------------------------------------


def _average_precision_at_k(relevant: tuple[str, ...], ranked: tuple[str, ...], k: int) -> float:
    """Kaggle's apk: precision at each new relevant hit among the first k, over min(|relevant|, k).
    A repeated id counts once; no relevant ids scores 0."""
    relevant_set = set(relevant)
    if not relevant_set:
        return 0.0
    hits, total, seen = 0, 0.0, set()
    for position, item in enumerate(ranked[:k]):
        if item in relevant_set and item not in seen:
            hits += 1
            total += hits / (position + 1)
        seen.add(item)
    return total / min(len(relevant_set), k)


@register_metric("map@k", lower_is_better=False, kind=Kind.RANKED_LIST)
def _map_at_k(truth, pred, k: int) -> float:
    """Mean over rows of average precision at k (Kaggle's mapk). Predictions are space-separated
    ids, best first; ids past the k-th are ignored; an empty prediction scores 0 for its row."""
    return float(np.mean([_average_precision_at_k(t, p, k) for t, p in zip(truth, pred)]))


def _relevance_answers(truth: np.ndarray) -> None:
    _require(truth.shape[1] >= 2, "ndcg needs at least 2 item columns to rank")


@register_metric("ndcg@k", lower_is_better=False, kind=Kind.ITEM_SCORES,
                 check_answers=_relevance_answers)
def _ndcg_at_k(truth, pred, k: int) -> float:
    """Mean over rows of DCG@k / ideal DCG@k, scikit-learn's ndcg_score convention: linear gain
    (the relevance itself), discount 1/log2(rank + 1), tied scores share the average discount of
    their ranks, and a row whose answers are all 0 scores 0."""
    n, m = pred.shape
    order = np.argsort(-pred, axis=1, kind="stable")
    scores = np.take_along_axis(pred, order, axis=1)  # (n, m) best first
    relevance = np.take_along_axis(truth, order, axis=1)
    ranks = np.arange(m)
    discount = np.where(ranks < k, 1 / np.log2(ranks + 2), 0.0)
    # Tie groups: runs of equal scores within a row, numbered across the flattened matrix.
    starts = np.ones((n, m), dtype=bool)
    starts[:, 1:] = scores[:, 1:] != scores[:, :-1]
    group = np.cumsum(starts.ravel()) - 1
    group_relevance = np.bincount(group, weights=relevance.ravel())
    group_size = np.bincount(group)
    group_discount = np.bincount(group, weights=np.broadcast_to(discount, (n, m)).ravel())
    group_row = np.repeat(np.arange(n), m)[starts.ravel()]
    dcg = np.bincount(group_row, weights=group_relevance / group_size * group_discount,
                      minlength=n)
    ideal = -np.sort(-truth, axis=1) @ discount
    gains = np.divide(dcg, ideal, out=np.zeros(n), where=ideal > 0)
    return float(np.mean(gains))
