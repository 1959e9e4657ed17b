"""Class labels matched to a submission's class columns: by name, by a token of the name, and
by order only when no name matches."""

import pytest

from sandmle_jax.tasks.class_columns import match_columns


@pytest.mark.parametrize("labels, columns, expected", [
    (["EAP", "HPL", "MWS"], ["MWS", "EAP", "HPL"], {"EAP": "EAP", "HPL": "HPL", "MWS": "MWS"}),
    (["adelie", "gentoo"], ["Adelie", "Chinstrap", "Gentoo"],
     {"adelie": "Adelie", "gentoo": "Gentoo"}),
    ([0, 1, 2], ["class_0", "class_2", "class_1"], {0: "class_0", 1: "class_1", 2: "class_2"}),
    (["1.0", "2.0"], ["Class-2", "Class-1"], {"1.0": "Class-1", "2.0": "Class-2"}),
    ([2, 0, 1], ["low", "mid", "high"], {0: "low", 1: "mid", 2: "high"}),  # order, numerically
    ([10, 9], ["a", "b"], {9: "a", 10: "b"}),
])
def test_matches(labels, columns, expected):
    assert match_columns(labels, columns) == expected


@pytest.mark.parametrize("labels, columns", [
    (["a", "b", "c"], ["x", "y"]),  # counts differ and no name matches
    (["cat", "dog", "bird"], ["cat", "p", "q"]),  # a partial name match rules out order
    (["1"], ["v1_1", "w_1"]),  # two columns hold the token: ambiguous
])
def test_no_one_to_one_match(labels, columns):
    assert match_columns(labels, columns) is None
