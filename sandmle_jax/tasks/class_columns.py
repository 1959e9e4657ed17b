"""Which submission column stands for which class label, when a submission has one per class.

Kaggle-style class-probability submissions mostly name each column exactly as its label (`EAP`,
`HPL`, `MWS`); some name it around the label (`class_0` for label 0, `Class_1`, `p_dog`); some
not at all (labels 0, 1, 2 and columns `low`, `mid`, `high`), where only the order is left.
`match_columns` tries exactly that, in that order: the same name (exactly, then ignoring case);
a column holding the label as a separate token of its name ("class_0" for 0, "Class-2" for 2.0);
and, only when no name matched at all and the counts agree, label order (numeric when all labels
are numbers) to column order. It uses nothing but the standard library: the reference agent's
programs carry its source as their own code.
"""

from __future__ import annotations


def match_columns(labels, columns):
    """{label: column} for every label (by name, by a token of the name, else by order), or
    None when no one-to-one match is found."""
    import re

    def text(label):
        try:
            number = float(label)
        except (TypeError, ValueError):
            return str(label)
        return str(int(number)) if number.is_integer() else str(label)

    names = {text(label): label for label in labels}
    columns = [str(c) for c in columns]
    found = {}
    for how in (lambda n, c: n == c, lambda n, c: n.lower() == c.lower(),
                lambda n, c: n.lower() in re.split(r"[^0-9a-z.]+", c.lower())):
        for name in names:
            if name in found:
                continue
            hits = [c for c in columns if how(name, c) and c not in found.values()]
            if len(hits) == 1:
                found[name] = hits[0]
    if not found and len(names) == len(columns):
        def order(name):
            try:
                return (0, float(name), name)
            except ValueError:
                return (1, 0.0, name)
        found = dict(zip(sorted(names, key=order), columns))
    if len(found) != len(names):
        return None
    return {names[name]: column for name, column in found.items()}
