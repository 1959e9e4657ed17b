"""A task's stand-alone evaluator in the SandMLE release's contract (filled in by evaluators.py).

    python evaluator.py --submission_path PATH     (cwd: the folder that holds answer.csv)

prints one JSON object: score, is_lower_better and the four thresholds; an unusable submission
exits 1 with the reason on stderr. It needs only numpy, pandas, scipy and scikit-learn, so it
runs where our package is not installed (the release's own tools run it). Scores use
scikit-learn where it follows our registry's convention and a formula where it does not (log
loss clipping, correlations of constant predictions, Kaggle's apk), so the cross-check against
`tasks.metrics` is a second implementation, not a copy.
"""

import argparse
import json
import sys

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics

TASK = None  # the task's settings: metric, k, columns, direction, thresholds
ANSWER_FILE = "answer.csv"
EPS = 1e-15


class Invalid(ValueError):
    """The submission cannot be scored; the message says why."""


def numbers(frame, columns, low=None, high=None, whole=False):
    values = frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise Invalid(f"columns {columns} must hold finite numbers in every row")
    if low is not None and (values < low).any():
        raise Invalid(f"columns {columns} hold values below {low}")
    if high is not None and (values > high).any():
        raise Invalid(f"columns {columns} hold values above {high}")
    if whole and (values != np.round(values)).any():
        raise Invalid(f"columns {columns} must hold whole numbers")
    return values


def labels(truth, pred):
    """Both label columns in one type: numbers when the answers are numbers, else text."""
    if (pred.str.len() == 0).any():
        raise Invalid("some rows have no label")
    truth_numbers = pd.to_numeric(truth, errors="coerce")
    if truth_numbers.notna().all():
        pred_numbers = pd.to_numeric(pred, errors="coerce")
        if pred_numbers.isna().any():
            raise Invalid("labels must be numbers, as in the training data")
        return truth_numbers.to_numpy(dtype=float), pred_numbers.to_numpy(dtype=float)
    return truth.to_numpy(dtype=str), pred.to_numpy(dtype=str)


def one_auc(truth, score):
    return metrics.roc_auc_score(truth.astype(int), score)


def correlation(truth, pred, rank):
    if np.ptp(pred) == 0:
        return 0.0
    return float((stats.spearmanr if rank else stats.pearsonr)(truth, pred)[0])


def apk(relevant, ranked, k):
    relevant, hits, total, seen = set(relevant), 0, 0.0, set()
    for position, item in enumerate(ranked[:k]):
        if item in relevant and item not in seen:
            hits += 1
            total += hits / (position + 1)
        seen.add(item)
    return total / min(len(relevant), k) if relevant else 0.0


def ranked(column):
    if column.str.contains("[,;]").any():
        raise Invalid("ranked lists must be space-separated ids")
    return [cell.split() for cell in column]


def log_loss_rows(truth_index, pred):
    p = np.clip(pred, EPS, 1 - EPS)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(p)), truth_index])))


def score(task, answers, submission):
    """The metric on rows already aligned by id (both frames hold text cells)."""
    name, targets, k = task["metric"], task["target_columns"], task.get("k")
    one = targets[0]
    if name in ("accuracy", "balanced_accuracy", "f1", "f1_macro", "f1_micro", "mcc"):
        t, p = labels(answers[one], submission[one])
        if name == "accuracy":
            return metrics.accuracy_score(t, p)
        if name == "balanced_accuracy":
            return metrics.balanced_accuracy_score(t, p)
        if name == "mcc":
            return metrics.matthews_corrcoef(t, p)
        if name == "f1":
            if not np.isin(p, (0, 1)).all():
                raise Invalid("f1 scores 0/1 labels: write 0 or 1")
            return metrics.f1_score(t, p, pos_label=1)
        return metrics.f1_score(t, p, average=name[3:])
    if name == "quadratic_weighted_kappa":
        t = numbers(answers, [one])[:, 0]
        p = numbers(submission, [one], whole=True)[:, 0]
        low, high = min(t.min(), p.min()), max(t.max(), p.max())
        return metrics.cohen_kappa_score(t, p, weights="quadratic",
                                         labels=np.arange(low, high + 1))
    if name in ("roc_auc", "log_loss"):
        t = numbers(answers, [one])[:, 0]
        p = numbers(submission, [one], 0, 1)[:, 0]
        if name == "roc_auc":
            return one_auc(t, p)
        p = np.clip(p, EPS, 1 - EPS)
        return float(-np.mean(t * np.log(p) + (1 - t) * np.log1p(-p)))
    if name in ("multiclass_roc_auc", "multiclass_log_loss"):
        truth_index = numbers(answers, targets).argmax(axis=1)
        p = numbers(submission, targets, 0)
        if name == "multiclass_log_loss":
            return log_loss_rows(truth_index, p)
        return float(np.mean([one_auc(truth_index == c, p[:, c]) for c in range(p.shape[1])]))
    if name == "mean_columnwise_roc_auc":
        t, p = numbers(answers, targets), numbers(submission, targets, 0, 1)
        return float(np.mean([one_auc(t[:, c], p[:, c]) for c in range(t.shape[1])]))
    if name in ("rmse", "rmsle", "mean_columnwise_rmse", "mean_columnwise_rmsle", "mae", "r2",
                "mape", "pearson", "spearman"):
        log = name.endswith("rmsle")
        t = numbers(answers, targets)
        p = numbers(submission, targets, 0 if log else None)
        if name.startswith("mean_columnwise"):
            error = metrics.mean_squared_log_error if log else metrics.mean_squared_error
            return float(np.mean([np.sqrt(error(t[:, c], p[:, c])) for c in range(t.shape[1])]))
        t, p = t[:, 0], p[:, 0]
        if name in ("rmse", "rmsle"):
            error = metrics.mean_squared_log_error if log else metrics.mean_squared_error
            return float(np.sqrt(error(t, p)))
        if name in ("pearson", "spearman"):
            return correlation(t, p, rank=name == "spearman")
        scorer = {"mae": metrics.mean_absolute_error, "r2": metrics.r2_score,
                  "mape": metrics.mean_absolute_percentage_error}[name]
        return float(scorer(t, p))
    if name.startswith("map@"):
        truth, guesses = ranked(answers[one]), ranked(submission[one])
        return float(np.mean([apk(t, p, k) for t, p in zip(truth, guesses)]))
    if name.startswith("ndcg@"):
        t, p = numbers(answers, targets, 0), numbers(submission, targets)
        return float(metrics.ndcg_score(t, p, k=k))
    raise SystemExit(f"evaluator: metric {name!r} is not implemented here")


def aligned(task, answers, submission):
    """The submission's rows in the answers' order, after the column and id checks."""
    expected = [task["id_column"], *task["target_columns"]]
    if sorted(submission.columns) != sorted(expected):
        raise Invalid(f"columns must be exactly {expected}, got {list(submission.columns)}")
    ids = submission[task["id_column"]]
    if ids.duplicated().any():
        raise Invalid(f"ids appear more than once: {ids[ids.duplicated()].tolist()[:5]}")
    if set(ids) != set(answers[task["id_column"]]):
        raise Invalid("the ids must be exactly the test ids, one row each")
    return submission.set_index(task["id_column"]).loc[answers[task["id_column"]]].reset_index()


def evaluate(task, answers_path, submission_path):
    read = {"dtype": str, "keep_default_na": False}
    answers = pd.read_csv(answers_path, **read)
    try:
        submission = pd.read_csv(submission_path, **read)
    except (OSError, ValueError) as e:
        raise Invalid(f"cannot read the submission as CSV: {e}")
    submission = submission.apply(lambda column: column.str.strip())
    value = float(score(task, answers, aligned(task, answers, submission)))
    if not np.isfinite(value):
        raise Invalid(f"the score is {value}")
    return value


def main(task):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submission_path", required=True)
    args = parser.parse_args()
    try:
        value = evaluate(task, ANSWER_FILE, args.submission_path)
    except Invalid as e:
        print(f"invalid submission: {e}", file=sys.stderr)
        sys.exit(1)
    thresholds = task["thresholds"]
    print(json.dumps({"score": value, "is_lower_better": task["lower_is_better"],
                      **{f"{level}_threshold": thresholds[level]
                         for level in ("gold", "silver", "bronze", "median")}}))


if __name__ == "__main__":
    main(TASK)
