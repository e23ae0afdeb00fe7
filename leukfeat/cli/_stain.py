"""``--stain`` and ``--stain-target`` of ``evaluate``, ``train`` and ``extract``:
every image normalised on its own to a fixed target."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .. import preprocess
from ._features import n_jobs_for
from ._output import CommandError, format_error, one_line

if TYPE_CHECKING:
    import argparse

#: Fixed targets of ``--stain`` when no ``--stain-target`` is given, as plain
#: values: :data:`leukfeat.preprocess.SMEAR_REINHARD_TARGET` and
#: ``SMEAR_MACENKO_TARGET``, the colour statistics of leukfeat's synthetic
#: Wright-Giemsa smears (frozen there). Every image is mapped to the target on
#: its own: nothing is learnt from the evaluated images, so no statistic
#: crosses the folds.
REINHARD_TARGET = {"mean": tuple(preprocess.SMEAR_REINHARD_TARGET.mean.tolist()),
                   "std": tuple(preprocess.SMEAR_REINHARD_TARGET.std.tolist())}
MACENKO_TARGET = {
    "stain_matrix": tuple(map(tuple, preprocess.SMEAR_MACENKO_TARGET.stain_matrix.tolist())),
    "max_concentrations": tuple(preprocess.SMEAR_MACENKO_TARGET.max_concentrations.tolist())}
STAIN_METHODS = ("reinhard", "macenko")


def stain_target(method: str, target_file):
    """(target, JSON description) of --stain METHOD [--stain-target FILE]."""
    from .. import preprocess
    from ..io import read_image

    if target_file is None:
        target = (preprocess.SMEAR_REINHARD_TARGET if method == "reinhard"
                  else preprocess.SMEAR_MACENKO_TARGET)
        source = ("built-in: leukfeat's synthetic Wright-Giemsa smears "
                  "(make_cells(24, n_classes=3, size=128, random_state=0))")
    else:
        try:
            image = read_image(target_file)
        except (OSError, ValueError) as exc:
            raise CommandError(f"--stain-target: {format_error(exc)}") from None
        try:
            target = (preprocess.reinhard_stats(image) if method == "reinhard"
                      else preprocess.macenko_stains(image))
        except ValueError as exc:
            raise CommandError(f"--stain-target: {target_file}: {one_line(exc)}") from None
        source = str(Path(target_file).resolve())
    if method == "reinhard":
        values = {"mean": cast("preprocess.ReinhardTarget", target).mean.tolist(),
                  "std": cast("preprocess.ReinhardTarget", target).std.tolist()}
    else:
        values = {"stain_matrix": cast("preprocess.MacenkoTarget", target).stain_matrix.tolist(),
                  "max_concentrations": cast("preprocess.MacenkoTarget", target).max_concentrations.tolist()}
    return target, {"method": method, "target": source, "target_values": values,
                    "how": "each image is normalised on its own to this fixed target "
                           "(nothing is learnt from the evaluated images, so nothing "
                           "leaks across folds); the features and the confound check "
                           "see the normalised images"}


class Normalise:
    """Read an image and map it to a fixed stain target (picklable).

    A file that cannot be read is passed on as its path: the feature
    extractor then fails on it and reports it like any unreadable file.
    """

    def __init__(self, method: str, target):
        self.method = method
        self.target = target

    def __call__(self, path):
        from .. import preprocess
        from ..io import read_image

        try:
            image = read_image(path)
        except (OSError, ValueError):
            return path
        if self.method == "reinhard":
            return preprocess.reinhard(image, self.target)
        return preprocess.macenko(image, self.target)


def normalise_items(args: argparse.Namespace, paths: Any, stain: tuple[Any, dict[str, Any]],
                    progress: bool) -> tuple[list[Any], dict[str, Any]]:
    """(items, JSON description): the images of ``paths`` normalised to ``stain``,
    a ``(target, description)`` pair of :func:`stain_target`.

    The normalised images are held in memory (about 150 kB per 224x224 image)
    and given to the extractor and the confound check as arrays.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    target, info = stain
    info = dict(info)
    fn = Normalise(info["method"], target)
    t0 = time.perf_counter()
    results = Parallel(n_jobs=n_jobs_for(args, len(paths)), prefer="threads",
                       return_as="generator")(delayed(fn)(p) for p in paths)
    items = list(tqdm(results, total=len(paths), desc="stain normalisation", unit="image",
                      disable=not progress))
    info["seconds"] = time.perf_counter() - t0
    return items, info


def stain_from_args(args: argparse.Namespace) -> tuple[Any, dict[str, Any]] | None:
    """``(target, JSON description)`` of ``--stain`` / ``--stain-target``, or None."""
    if args.stain_target is not None and args.stain is None:
        raise CommandError("--stain-target: needs --stain reinhard or --stain macenko")
    return None if args.stain is None else stain_target(args.stain, args.stain_target)
