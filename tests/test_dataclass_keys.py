"""The shared unknown/missing-key check of dicts turned into dataclasses."""

import dataclasses

import pytest

from sandmle_jax.dataclass_keys import check_keys


@dataclasses.dataclass
class Spec:
    name: str
    size: int = 1
    tags: tuple = dataclasses.field(default_factory=tuple)


class SpecError(ValueError):
    pass


def test_known_keys_pass():
    check_keys(Spec, {"name": "a", "size": 2}, "spec", require=True)
    check_keys(Spec, {}, "spec")  # nothing required without `require`


def test_unknown_key_is_named_with_the_known_ones():
    with pytest.raises(SpecError, match=r"spec x: unknown keys \['colour'\]; known: "
                                        r"\['name', 'size', 'tags'\]"):
        check_keys(Spec, {"name": "a", "colour": "blue"}, "spec x", error=SpecError)


def test_missing_required_key_is_named():
    with pytest.raises(SpecError, match=r"missing required keys \['name'\]"):
        check_keys(Spec, {"size": 3}, "spec", error=SpecError, require=True)
