"""Inputs of the command line.

Image files and folders, labelled data sets, masks matched to images by
file stem, and classifier names.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import warnings
from pathlib import Path

from ._output import CommandError, one_line

#: Classifier presets (:data:`leukfeat.models.CLASSIFIERS`, repeated here so
#: that option errors do not wait for scikit-learn to import; a test keeps
#: them equal).
CLASSIFIERS = ("knn", "svm", "rf", "xgboost", "logreg", "hgb")
#: What ``--classifier all`` evaluates (the models of the accuracy benchmark).
ALL_CLASSIFIERS = ("knn", "svm", "rf", "xgboost")


@contextlib.contextmanager
def listing_warnings():
    """Print what was skipped while listing folders (each message once, on
    stderr, whatever --quiet says): never silent."""
    from ..io import ListingWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ListingWarning)
        yield
    for text in dict.fromkeys(one_line(w.message) for w in caught):
        print(f"leukfeat: warning: {text}", file=sys.stderr)


def collect_images(inputs, option: str = "INPUT") -> list:
    """Image files given directly or found (recursively) in folders, in order, once each.

    A path given directly that is a dangling or looping symbolic link, a FIFO
    or a device is kept as an item (reading it reports why it failed, in its
    row); a path that does not exist at all is an error of the command.
    """
    from ..io import IMAGE_EXTENSIONS, list_images

    paths, seen = [], set()
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            with listing_warnings():
                found = list_images(p)
            if not found:
                raise CommandError(f"{option}: no image files "
                                   f"({', '.join(sorted(IMAGE_EXTENSIONS))}) in folder {p}")
        elif os.path.lexists(p):
            found = [p]
        else:
            raise FileNotFoundError(errno.ENOENT, f"{option}: no such file or folder", str(p))
        for f in found:
            key = os.path.realpath(f)
            if key not in seen:
                seen.add(key)
                paths.append(str(f))
    return paths


def loader_names() -> tuple:
    from .. import datasets

    return tuple(datasets.LOADERS)


def check_loader(name) -> str:
    """The loader name, normalised as load_dataset does; an error if unknown."""
    names = loader_names()
    key = str(name).strip().casefold()
    if key not in names:
        raise CommandError(f"--loader: unknown loader {name!r}; expected one of "
                           f"{', '.join(names)}")
    return key


def load_labelled(root, loader: str, *, limit=None, seed=0):
    """A LabelledImages data set (optionally a stratified subset).

    Loader warnings (e.g. ignored files) are printed as one line each on
    stderr, whatever --quiet says.
    """
    from .. import datasets

    loader = check_loader(loader)
    root_path = Path(root)
    if not root_path.exists():
        raise FileNotFoundError(errno.ENOENT, "ROOT: no such data-set folder", str(root))
    if not root_path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "ROOT: not a folder", str(root))
    with listing_warnings():
        data = datasets.load_dataset(root, loader=loader)
    if len(data) == 0:
        raise CommandError(f"ROOT: the {loader} loader found no images in {root}")
    n_total = len(data)
    if limit is not None and limit < len(data):
        data = data.stratified_subset(limit, random_state=seed)
    return data, n_total


def count_classes(labels) -> dict:
    import numpy as np

    names, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return {str(n): int(c) for n, c in zip(names, counts)}


def data_summary(data, loader, limit, n_total=None) -> dict:
    return {"root": str(getattr(data, "root", "")), "loader": loader,
            "name": getattr(data, "name", loader), "n_images": len(data),
            "limit": limit, "n_images_in_data_set": len(data) if n_total is None else n_total,
            "class_counts": count_classes(data.labels),
            "patient_groups": None if data.groups is None
            else int(len(set(map(str, data.groups))))}



def classifier_names(text: str) -> list:
    """Preset names from NAME, 'all' or a comma-separated list (no heavy import)."""
    names: list[str] = []
    for part in str(text).split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part == "all":
            names.extend(ALL_CLASSIFIERS)
        elif part in CLASSIFIERS:
            names.append(part)
        else:
            raise CommandError(f"--classifier: unknown classifier {part!r}; expected one of "
                               f"{', '.join(CLASSIFIERS)}, 'all' or a comma-separated list")
    names = list(dict.fromkeys(names))
    if not names:
        raise CommandError("--classifier: no classifier given")
    return names
