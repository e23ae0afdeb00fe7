"""White-cell segmentation quality and speed on four public sets.

Run from the repository root (about 30 s on 2 cores)::

    python benchmarks/segmentation_quality.py              # full run
    python benchmarks/segmentation_quality.py --limit 20   # smoke test

Compares the segmenters of ``leukfeat.segment`` (``nucleus_anchored``, the
default, ``lab_kmeans``, ``hsv_threshold``, ``otsu``) with a peer baseline
written here in scikit-image only (``skimage``: Otsu on the inverted green
channel, hole filling, small-object removal; nucleus = the darker Otsu class
of the green channel inside the cell). Every method goes through the same
evaluation, on the sets of ``../shared/data`` (a missing folder is skipped
with the reason printed):

1. ``zheng-wbc-d1`` (300 single-cell images, 120x120) and
   ``zheng-wbc-d2-dev`` (50, 300x300), expert masks: per-image Dice of the
   whole cell (all objects found, and the best single object), of the nucleus
   and of the cytoplasm, ``segment.segment(image, method)``; mean and median.
   The Dice of two empty masks is 1.
2. ``bccd-dev`` (120 smear fields, 640x480, VOC boxes): white-cell detection
   with ``segment.cells(image, method)`` (touching cells split), tight boxes
   matched one-to-one to the ``WBC`` boxes, greedily by box IoU >= 0.3 (the
   boxes are loose); recall, precision and predicted cells per field.
3. ``taleghani-all`` (224x224 fields, no masks): on ``--taleghani-sample``
   fields (the same number from each class, every k-th file in sorted order),
   cells per field from ``segment.cells``, the fraction of fields without a
   cell, and the mean Dice of each method's white-cell mask with
   ``nucleus_anchored``'s.
4. The ten worst images of ``--worst-method`` on D1, D2 (lowest cell Dice)
   and BCCD (most missed plus false cells; only fields with an error),
   drawn as overlays (found cells green, nuclei yellow, ground truth red)
   into ``--out`` (default ``benchmarks/output/segmentation_quality``,
   git-ignored).
5. Speed on one thread, all methods in this process: the median time of
   ``segment.segment(image, method)`` over ``--time-images`` images of each
   size (120x120 D1, 224x224 Taleghani, 300x300 D2, 640x480 BCCD) after a
   warm-up on 3 images, and its ratio to ``lab_kmeans``. The speed targets of
   the default are <= 5 ms at 224x224, <= 10 ms at 300x300 and <= 40 ms at
   640x480.

Prints the Markdown tables and writes them (``results.md``), every number
(``results.json``, per-image values included) and the overlays
(``worst_<set>_<rank>_<stem>.png``) into ``--out``. A method that raises on
an image is reported with the image and the traceback (stderr, the
``Errors`` section and ``results.json``), and that image is left out of the
method's scores. ``--limit N`` keeps the first N images of each set (and at
most N Taleghani fields).
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # one thread everywhere, set before the imports
os.environ["NUMBA_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import skimage  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402
from skimage import filters, measure, morphology  # noqa: E402

import leukfeat  # noqa: E402
from leukfeat import segment  # noqa: E402
from leukfeat.io import read_image  # noqa: E402
from leukfeat.segment import Segmentation  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from accuracy_taleghani import load as load_taleghani  # noqa: E402  (same file order)

cv2.setNumThreads(1)

DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "benchmarks" / "output" / "segmentation_quality"
KNOWN = {*segment.METHODS, "skimage"}
DEFAULT_METHODS = ("nucleus_anchored", "lab_kmeans", "hsv_threshold", "otsu", "skimage")
REFERENCE = "nucleus_anchored"   # the Taleghani masks are compared with this method's
MATCH_IOU = 0.3                  # BCCD boxes are loose (see the data README)
N_WORST = 10
N_WARMUP = 3
ZHENG_SETS = (("zheng-wbc-d1", "D1"), ("zheng-wbc-d2-dev", "D2-dev"))
ZHENG_METRICS = (("cell", "cell (all objects)"), ("cell_best", "cell (best object)"),
                 ("nucleus", "nucleus"), ("cytoplasm", "cytoplasm"))
WORST_TAGS = {"zheng-wbc-d1": "d1", "zheng-wbc-d2-dev": "d2", "bccd-dev": "bccd"}
SPEED_TARGET_MS = {"224x224": 5.0, "300x300": 10.0, "640x480": 40.0}
GT_COLOUR = (255, 0, 0)          # RGB red; found cells are green, nuclei yellow

# scikit-image 0.26 renamed remove_small_objects' min_size (drops < min_size)
# to max_size (drops <= max_size)
_MAX_SIZE_KW = "max_size" in inspect.signature(morphology.remove_small_objects).parameters


# --------------------------------------------------------------------------
# the scikit-image peer baseline
# --------------------------------------------------------------------------
def skimage_baseline(image) -> Segmentation:
    """White cells and nuclei with scikit-image only (the peer baseline).

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB image.

    Returns
    -------
    Segmentation
        Cell: Otsu's threshold of ``255 - green`` (pixels above it), holes
        filled, objects smaller than ``max(16, 0.0015 * H * W)`` pixels
        removed. Nucleus: the cell pixels whose green value is below Otsu's
        threshold of the green values inside the cell. Labels: connected
        components of the cell mask.
    """
    green = image[..., 1]
    stain = 255 - green
    cell = ndi.binary_fill_holes(stain > filters.threshold_otsu(stain))
    min_size = max(16, int(round(0.0015 * green.size)))
    cell = (morphology.remove_small_objects(cell, max_size=min_size - 1) if _MAX_SIZE_KW
            else morphology.remove_small_objects(cell, min_size))
    nucleus = np.zeros_like(cell)
    if cell.any():
        nucleus = cell & (green < filters.threshold_otsu(green[cell]))
    return Segmentation.from_masks(cell, nucleus, measure.label(cell), method="skimage")


def segmenters(names) -> dict:
    """Map method names to what ``segment.segment`` accepts.

    Parameters
    ----------
    names : list of str
        Keys of ``segment.METHODS`` or ``"skimage"`` (see :data:`KNOWN`).

    Returns
    -------
    dict
        ``name -> name`` for leukfeat's segmenters, ``"skimage" ->``
        :func:`skimage_baseline`.
    """
    return {n: skimage_baseline if n == "skimage" else n for n in names}


# --------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------
def dice(a, b) -> float:
    """Dice coefficient of two boolean masks (1 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(a & b)) / total


def best_object_dice(labels, truth) -> float:
    """Highest Dice of a single labelled object (``labels == k``) with ``truth``.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        0 for background, ``1..n`` for the objects.
    truth : ndarray of bool, shape (H, W)
        Ground-truth mask.

    Returns
    -------
    float
        0 when there is no object (1 when ``truth`` is empty too).
    """
    n_truth = int(truth.sum())
    if labels.max() == 0:
        return 1.0 if n_truth == 0 else 0.0
    areas = np.bincount(labels.ravel())
    inter = np.bincount(labels[truth], minlength=areas.size)
    return float(np.max(2.0 * inter[1:] / (areas[1:] + n_truth)))


def zheng_scores(seg: Segmentation, gt: np.ndarray) -> dict:
    """Dice of ``seg`` with a Zheng ground truth (0 / 128 cytoplasm / 255 nucleus)."""
    cell, nuc = gt > 64, gt > 192
    return {"cell": dice(seg.mask, cell),
            "cell_best": best_object_dice(seg.labels, cell),
            "nucleus": dice(seg.nucleus, nuc),
            "cytoplasm": dice(seg.mask & ~seg.nucleus, cell & ~nuc)}


def voc_wbc_boxes(xml_path) -> list:
    """``WBC`` boxes of a Pascal VOC file as half-open ``(row0, col0, row1, col1)``.

    VOC corners are 1-based and inclusive: ``(ymin - 1, xmin - 1, ymax, xmax)``.
    """
    boxes = []
    for obj in ET.parse(xml_path).getroot().iter("object"):
        if obj.findtext("name", "").strip() != "WBC":
            continue
        bb = obj.find("bndbox")
        x0, y0, x1, y1 = (int(float(bb.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append((y0 - 1, x0 - 1, y1, x1))
    return boxes


def box_iou(a, b) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of half-open ``(row0, col0, row1, col1)`` boxes."""
    a = np.asarray(a, float).reshape(-1, 4)
    b = np.asarray(b, float).reshape(-1, 4)
    rows = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    cols = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(rows, 0, None) * np.clip(cols, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def greedy_matches(pred, truth, threshold: float = MATCH_IOU) -> int:
    """Number of one-to-one matches, taking the highest-IoU pair first.

    Parameters
    ----------
    pred, truth : list of tuple
        Half-open ``(row0, col0, row1, col1)`` boxes.
    threshold : float
        Smallest IoU of a match.
    """
    iou = box_iou(pred, truth)
    n = 0
    while iou.size and iou.max() >= threshold:
        i, j = np.unravel_index(np.argmax(iou), iou.shape)
        iou[i, :] = -1.0
        iou[:, j] = -1.0
        n += 1
    return n


def field_cells(image, method, name: str):
    """White cells of a smear field as ``segment.cells`` finds them.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB smear field.
    method : str or callable
        Segmenter passed to ``segment.cells``.
    name : str
        Method name stored in the returned segmentation.

    Returns
    -------
    crops : list of CellCrop
        One per cell, tight boxes (``margin=0``).
    seg : Segmentation
        The same cells pasted back into the field (label ``k`` is
        ``crops[k - 1]``), for the mask agreement and the overlays.
    """
    crops = segment.cells(image, method, margin=0)
    labels = np.zeros(image.shape[:2], np.int32)
    nucleus = np.zeros(image.shape[:2], bool)
    for k, crop in enumerate(crops, 1):
        r0, c0, r1, c1 = crop.bbox
        labels[r0:r1, c0:c1][crop.mask] = k
        nucleus[r0:r1, c0:c1] |= crop.nucleus
    return crops, Segmentation.from_masks(labels > 0, nucleus, labels, method=name)


# --------------------------------------------------------------------------
# running the methods
# --------------------------------------------------------------------------
def attempt(errors: list, where: str, method: str, image: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or None after recording the exception it raised.

    The traceback is printed to stderr the first time a method raises a
    given error, a one-line note the next times.

    Parameters
    ----------
    errors : list
        Receives ``{"set", "method", "image", "error", "traceback"}``.
    where, method, image : str
        Set name, method name and image (for the report).
    fn : callable
        The call to make.
    """
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        tb = traceback.format_exc()
        error = f"{type(exc).__name__}: {exc}"
        seen = any(e["method"] == method and e["error"] == error for e in errors)
        errors.append({"set": where, "method": method, "image": image,
                       "error": error, "traceback": tb})
        print(f"ERROR in {where}, {method} on {image}: "
              + (f"{error} (traceback above)" if seen else f"\n{tb}"),
              file=sys.stderr, flush=True)
        return None


def spread(items: list, n: int) -> list:
    """At most ``n`` items, every k-th one (k = len // n), in the given order."""
    if n <= 0 or not items:
        return []
    return items[::max(1, len(items) // n)][:n]


def summary(values) -> dict:
    """Mean and median (NaN when there is no value)."""
    v = np.asarray(values, float)
    if v.size == 0:
        return {"mean": float("nan"), "median": float("nan")}
    return {"mean": float(v.mean()), "median": float(np.median(v))}


def run_zheng(folder: Path, methods: dict, limit, errors: list) -> dict:
    """Dice scores of every method on a Zheng et al. set.

    Parameters
    ----------
    folder : Path
        Folder with ``NNN.bmp`` images and ``NNN.png`` ground truths.
    methods : dict
        ``name -> segmenter`` (see :func:`segmenters`).
    limit : int or None
        Use the first ``limit`` images.
    errors : list
        Receives the exceptions raised (see :func:`attempt`).

    Returns
    -------
    dict
        ``n_images``, ``paths`` and per method ``n_errors``, the summary of
        each metric and ``per_image`` (``image`` stems and metric lists).
    """
    paths = sorted(p for p in folder.glob("*.bmp") if p.with_suffix(".png").is_file())[:limit]
    per = {m: {"image": [], **{k: [] for k, _ in ZHENG_METRICS}} for m in methods}
    for path in paths:
        image = read_image(path)
        gt = read_image(path.with_suffix(".png"))[..., 0]
        for name, method in methods.items():
            seg = attempt(errors, folder.name, name, path.name, segment.segment, image, method)
            if seg is None:
                continue
            per[name]["image"].append(path.stem)
            for k, v in zheng_scores(seg, gt).items():
                per[name][k].append(v)
    out = {"n_images": len(paths), "paths": [str(p) for p in paths]}
    for name in methods:
        out[name] = {"n_errors": len(paths) - len(per[name]["image"]),
                     **{k: summary(per[name][k]) for k, _ in ZHENG_METRICS},
                     "per_image": per[name]}
    return out


def run_bccd(folder: Path, methods: dict, limit, errors: list) -> dict:
    """White-cell detection of every method on the BCCD fields.

    Parameters
    ----------
    folder : Path
        Folder with ``JPEGImages/*.jpg`` and ``Annotations/*.xml``.
    methods, limit, errors
        As in :func:`run_zheng`.

    Returns
    -------
    dict
        ``n_images``, ``n_wbc``, ``paths`` and per method ``recall``,
        ``precision``, ``cells_per_field`` (mean), ``n_errors`` and
        ``per_image`` (``image``, ``n_pred``, ``n_gt``, ``matched``).
    """
    paths = sorted((folder / "JPEGImages").glob("*.jpg"))[:limit]
    per = {m: {"image": [], "n_pred": [], "n_gt": [], "matched": []} for m in methods}
    n_wbc = 0
    for path in paths:
        image = read_image(path)
        truth = voc_wbc_boxes(folder / "Annotations" / f"{path.stem}.xml")
        n_wbc += len(truth)
        for name, method in methods.items():
            crops = attempt(errors, folder.name, name, path.name, segment.cells, image, method,
                            margin=0)
            if crops is None:
                continue
            p = per[name]
            p["image"].append(path.stem)
            p["n_pred"].append(len(crops))
            p["n_gt"].append(len(truth))
            p["matched"].append(greedy_matches([c.bbox for c in crops], truth))
    out = {"n_images": len(paths), "n_wbc": n_wbc, "paths": [str(p) for p in paths]}
    for name in methods:
        p = per[name]
        matched, n_pred, n_gt = sum(p["matched"]), sum(p["n_pred"]), sum(p["n_gt"])
        out[name] = {"recall": matched / n_gt if n_gt else float("nan"),
                     "precision": matched / n_pred if n_pred else float("nan"),
                     "cells_per_field": summary(p["n_pred"])["mean"],
                     "matched": matched, "n_pred": n_pred, "n_gt": n_gt,
                     "n_errors": len(paths) - len(p["image"]), "per_image": p}
    return out


def taleghani_sample(folder: Path, n: int) -> list:
    """``n`` fields spread evenly over the classes: every k-th file of each class.

    Parameters
    ----------
    folder : Path
        ``taleghani-all`` (one sub-folder per class).
    n : int
        Sample size; class ``i`` gets ``n // n_classes`` fields, plus one for
        the first ``n % n_classes`` classes.
    """
    paths, labels = load_taleghani(folder)
    classes = sorted(set(labels))
    out = []
    for i, c in enumerate(classes):
        count = n // len(classes) + (i < n % len(classes))
        out += spread([p for p, y in zip(paths, labels) if y == c], count)
    return [Path(p) for p in out]


def run_taleghani(paths: list, methods: dict, errors: list) -> dict:
    """Cells per field and mask agreement with :data:`REFERENCE` on Taleghani fields.

    Parameters
    ----------
    paths : list of Path
        The sampled fields (see :func:`taleghani_sample`).
    methods, errors
        As in :func:`run_zheng`.

    Returns
    -------
    dict
        ``n_images``, ``paths`` and per method ``cells`` (mean, median of
        cells per field), ``empty_fraction``, ``dice_with_reference`` (mean,
        median; NaN without the reference method), ``n_errors`` and
        ``per_image`` (``image``, ``n_cells``, ``dice_with_reference``).
    """
    per = {m: {"image": [], "n_cells": [], "dice_with_reference": []} for m in methods}
    for path in paths:
        image = read_image(path)
        where = f"{path.parent.name}/{path.name}"
        segs = {}
        for name, method in methods.items():
            found = attempt(errors, "taleghani-all", name, where, field_cells, image, method, name)
            if found is None:
                continue
            segs[name] = found[1]
            per[name]["image"].append(where)
            per[name]["n_cells"].append(found[1].n_cells)
        if REFERENCE in segs:
            for name, seg in segs.items():
                per[name]["dice_with_reference"].append(dice(seg.mask, segs[REFERENCE].mask))
    out = {"n_images": len(paths), "reference": REFERENCE, "paths": [str(p) for p in paths]}
    for name in methods:
        p = per[name]
        n = np.asarray(p["n_cells"])
        out[name] = {"cells": summary(n),
                     "empty_fraction": float(np.mean(n == 0)) if n.size else float("nan"),
                     "dice_with_reference": summary(p["dice_with_reference"]),
                     "n_errors": len(paths) - len(p["image"]), "per_image": p}
    return out


def run_timing(sources: dict, methods: dict, n_images: int, errors: list) -> dict:
    """Median milliseconds per image of ``segment.segment`` for every method and size.

    Parameters
    ----------
    sources : dict
        ``set name -> list of image paths``, one set per image size.
    methods, errors
        As in :func:`run_zheng`.
    n_images : int
        Images timed per size (spread over the list), after a warm-up of
        every method on the first :data:`N_WARMUP` of them. The methods take
        turns on each image.

    Returns
    -------
    dict
        ``"WxH" -> {"set", "n_images", "n_errors": {method: count},
        method -> median ms}``.
    """
    out = {}
    for set_name, paths in sources.items():
        images = [read_image(p) for p in spread(paths, n_images)]
        if not images:
            continue
        size = f"{images[0].shape[1]}x{images[0].shape[0]}"
        for name, method in methods.items():
            for i, image in enumerate(images[:N_WARMUP]):
                attempt(errors, f"timing {size}", name, f"{set_name} warm-up #{i}",
                        segment.segment, image, method)
        times = {m: [] for m in methods}
        for i, image in enumerate(images):
            for name, method in methods.items():
                t0 = time.perf_counter()
                seg = attempt(errors, f"timing {size}", name, f"{set_name} #{i}",
                              segment.segment, image, method)
                dt = time.perf_counter() - t0
                if seg is not None:
                    times[name].append(dt)
        out[size] = {"set": set_name, "n_images": len(images),
                     "n_errors": {m: len(images) - len(t) for m, t in times.items()},
                     **{m: float(np.median(t)) * 1e3 if t else float("nan")
                        for m, t in times.items()}}
        print(f"timed {size} ({set_name}, {len(images)} images)", file=sys.stderr, flush=True)
    return out


# --------------------------------------------------------------------------
# worst images
# --------------------------------------------------------------------------
def save_rgb(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG."""
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def worst_zheng(result: dict, name: str, method, folder: Path, out: Path) -> list:
    """Overlays of the :data:`N_WORST` images with the lowest cell Dice.

    Parameters
    ----------
    result : dict
        Output of :func:`run_zheng`.
    name : str
        Method drawn (a key of ``result``).
    method : str or callable
        Its segmenter.
    folder : Path
        The set's folder.
    out : Path
        Output folder.

    Returns
    -------
    list of dict
        ``rank``, ``image``, ``cell`` Dice and ``file`` of each overlay.
    """
    per = result[name]["per_image"]
    tag = WORST_TAGS[folder.name]
    order = np.argsort(per["cell"], kind="stable")[:N_WORST]
    written = []
    for rank, i in enumerate(order, 1):
        stem = per["image"][i]
        image = read_image(folder / f"{stem}.bmp")
        truth = (read_image(folder / f"{stem}.png")[..., 0] > 64).astype(np.uint8)
        rgb = segment.segment(image, method).overlay(image)
        contours, _ = cv2.findContours(truth, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(rgb, contours, -1, GT_COLOUR, 1)
        file = out / f"worst_{tag}_{rank:02d}_{stem}.png"
        save_rgb(file, rgb)
        written.append({"rank": rank, "image": stem, "cell": per["cell"][i], "file": file.name})
    return written


def worst_bccd(result: dict, name: str, method, folder: Path, out: Path) -> list:
    """Overlays of the (at most) :data:`N_WORST` fields with the most missed plus false cells.

    Fields without a missed or false cell are not drawn.

    Parameters
    ----------
    result : dict
        Output of :func:`run_bccd`.
    name, method, folder, out
        As in :func:`worst_zheng`.

    Returns
    -------
    list of dict
        ``rank``, ``image``, ``missed``, ``false`` and ``file`` of each overlay.
    """
    per = result[name]["per_image"]
    matched = np.asarray(per["matched"])
    missed = np.asarray(per["n_gt"]) - matched
    false = np.asarray(per["n_pred"]) - matched
    order = [i for i in np.argsort(-(missed + false), kind="stable") if missed[i] + false[i]]
    order = order[:N_WORST]
    written = []
    for rank, i in enumerate(order, 1):
        stem = per["image"][i]
        image = read_image(folder / "JPEGImages" / f"{stem}.jpg")
        rgb = field_cells(image, method, name)[1].overlay(image, thickness=2)
        for r0, c0, r1, c1 in voc_wbc_boxes(folder / "Annotations" / f"{stem}.xml"):
            cv2.rectangle(rgb, (c0, r0), (c1 - 1, r1 - 1), GT_COLOUR, 2)
        file = out / f"worst_{WORST_TAGS[folder.name]}_{rank:02d}_{stem}.png"
        save_rgb(file, rgb)
        written.append({"rank": rank, "image": stem, "missed": int(missed[i]),
                        "false": int(false[i]), "file": file.name})
    return written


# --------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------
def fmt(v, digits: int = 3) -> str:
    """A number for the tables (an em dash for NaN)."""
    return "—" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def md_table(header: list, rows: list) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def row_name(name: str, n_errors: int) -> str:
    """Method name, flagged when it raised on some images."""
    return f"{name} ({n_errors} errors)" if n_errors else name


def zheng_table(results: dict, methods: list) -> str:
    """Dice table of the Zheng sets: ``mean / median`` per metric and set."""
    sets = [(tag, results[key]) for key, tag in ZHENG_SETS if key in results]
    header = ["method"] + [f"{tag} {label}" for tag, _ in sets for _, label in ZHENG_METRICS]
    rows = []
    for m in methods:
        errs = sum(r[m]["n_errors"] for _, r in sets)
        rows.append([row_name(m, errs)] + [
            f"{fmt(r[m][k]['mean'])} / {fmt(r[m][k]['median'])}"
            for _, r in sets for k, _ in ZHENG_METRICS])
    sizes = ", ".join(f"{tag}: {r['n_images']} images" for tag, r in sets)
    return (f"### Zheng et al. (2018): Dice, mean / median per image ({sizes})\n\n"
            + md_table(header, rows))


def bccd_table(r: dict, methods: list) -> str:
    """Detection table of the BCCD fields."""
    header = ["method", "recall", "precision", "cells per field (mean)",
              "matched / WBC boxes", "matched / predicted"]
    rows = [[row_name(m, r[m]["n_errors"]), fmt(r[m]["recall"]), fmt(r[m]["precision"]),
             fmt(r[m]["cells_per_field"], 2), f"{r[m]['matched']} / {r[m]['n_gt']}",
             f"{r[m]['matched']} / {r[m]['n_pred']}"] for m in methods]
    return (f"### BCCD: white-cell detection, {r['n_images']} fields, {r['n_wbc']} WBC boxes "
            f"(one-to-one, box IoU >= {MATCH_IOU})\n\n" + md_table(header, rows))


def taleghani_table(r: dict, methods: list) -> str:
    """Cells-per-field and agreement table of the Taleghani sample."""
    header = ["method", "cells per field (mean)", "cells per field (median)",
              "fields without a cell", f"mask Dice with {REFERENCE} (mean)"]
    rows = []
    for m in methods:
        agree = r[m]["dice_with_reference"]["mean"]
        rows.append([row_name(m, r[m]["n_errors"]), fmt(r[m]["cells"]["mean"], 2),
                     fmt(r[m]["cells"]["median"], 1), fmt(r[m]["empty_fraction"]),
                     "reference" if m == REFERENCE else fmt(agree)])
    return (f"### Taleghani: {r['n_images']} fields (no ground truth)\n\n"
            + md_table(header, rows))


def timing_table(t: dict, methods: list) -> str:
    """Speed table: median ms per image (ratio to ``lab_kmeans``) per size."""
    sizes = list(t)
    header = ["method"] + [f"{s} ({t[s]['set']})" for s in sizes]
    rows = []
    for m in methods:
        cells = []
        for s in sizes:
            base = t[s].get("lab_kmeans", float("nan"))
            cells.append(f"{fmt(t[s][m], 2)} ms ({fmt(t[s][m] / base, 1)}x)")
        rows.append([row_name(m, sum(t[s]["n_errors"][m] for s in sizes))] + cells)
    rows.append([f"target ({REFERENCE})"] + [
        f"<= {SPEED_TARGET_MS[s]:g} ms" if s in SPEED_TARGET_MS else "—" for s in sizes])
    counts = ", ".join(f"{s}: {t[s]['n_images']}" for s in sizes)
    return ("### Speed: median ms per image on one thread (ratio to lab_kmeans); "
            f"images per size: {counts}\n\n" + md_table(header, rows))


def errors_section(errors: list) -> str:
    """The exceptions raised, grouped by set, method and error.

    Lists up to five images of each group and the first traceback of each
    distinct error of a method (every traceback is in results.json).
    """
    if not errors:
        return "### Errors\n\nnone"
    groups, first = {}, {}
    for e in errors:
        groups.setdefault((e["set"], e["method"], e["error"]), []).append(e["image"])
        first.setdefault((e["method"], e["error"]), e)
    lines = ["### Errors", ""]
    for (where, method, error), images in groups.items():
        shown = ", ".join(images[:5]) + (", ..." if len(images) > 5 else "")
        lines.append(f"- {where}, {method}: {len(images)} failures ({shown}): {error}")
    for e in first.values():
        lines += ["", f"First traceback of {e['method']} ({e['set']}, {e['image']}):", "",
                  "```", e["traceback"].rstrip(), "```"]
    return "\n".join(lines)


def git_version() -> str:
    """``git describe --always --dirty`` of the repository ("unknown" without git)."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                              capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def source_digest() -> str:
    """First 12 hex digits of the SHA-256 of leukfeat's Python sources.

    Tells apart runs of different uncommitted code (``git describe`` only
    says "dirty").
    """
    h = hashlib.sha256()
    for f in sorted(Path(leukfeat.__file__).parent.rglob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


# --------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA),
                    help="folder holding the data sets (default ../shared/data)")
    ap.add_argument("--out", default=str(DEFAULT_OUT),
                    help="output folder (tables, results.json, worst-image overlays)")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                    help="comma-separated methods: keys of leukfeat.segment.METHODS and "
                         "'skimage' (default: %(default)s)")
    ap.add_argument("--limit", type=int, default=None,
                    help="use the first N images of each set (and at most N Taleghani fields)")
    ap.add_argument("--taleghani-sample", type=int, default=400,
                    help="Taleghani fields, spread evenly over the classes (default 400)")
    ap.add_argument("--time-images", type=int, default=30,
                    help="images timed per size (default 30; 0: no timing)")
    ap.add_argument("--worst-method", default=REFERENCE,
                    help=f"method whose worst images are drawn (default {REFERENCE})")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [n for n in names if n not in KNOWN]
    if unknown:
        ap.error(f"--methods: unknown {unknown}; expected some of {sorted(KNOWN)}")
    methods = segmenters(names)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join([os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    machine = {"python": platform.python_version(), "machine": platform.machine(),
               "cpus": os.cpu_count(), "leukfeat": leukfeat.__version__,
               "git": git_version(), "sources": source_digest(),
               "numpy": np.__version__, "opencv": cv2.__version__,
               "scikit-image": skimage.__version__}
    report = []

    def emit(*lines: str) -> None:
        """Print report lines and keep them for results.md."""
        report.extend(lines)
        print("\n".join(lines), flush=True)

    emit("## Segmentation quality", "", f"`{command}`", "",
         f"{date}; {machine['cpus']} CPUs ({machine['machine']}), one thread; "
         f"leukfeat {machine['leukfeat']} (git {machine['git']}, sources {machine['sources']}), OpenCV {machine['opencv']}, "
         f"scikit-image {machine['scikit-image']}", "")
    results = {"command": command, "date": date, "platform": machine, "args": vars(args),
               "methods": names, "sets": {}, "worst": {}, "skipped": {}}
    errors = []

    def skip(key: str, reason: str) -> None:
        results["skipped"][key] = reason
        emit(f"{key}: skipped ({reason})", "")

    def progress(key: str, t0: float) -> None:
        print(f"{key}: {results['sets'][key]['n_images']} images in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    for key, _ in ZHENG_SETS:
        folder = data / key
        if not folder.is_dir():
            skip(key, f"folder not found: {folder}")
            continue
        t0 = time.perf_counter()
        results["sets"][key] = run_zheng(folder, methods, args.limit, errors)
        progress(key, t0)

    folder = data / "taleghani-all"
    if folder.is_dir():
        n = args.taleghani_sample if args.limit is None else min(args.taleghani_sample,
                                                                  args.limit)
        t0 = time.perf_counter()
        results["sets"]["taleghani-all"] = run_taleghani(taleghani_sample(folder, n), methods,
                                                        errors)
        progress("taleghani-all", t0)
    else:
        skip("taleghani-all", f"folder not found: {folder}")

    folder = data / "bccd-dev"
    if folder.is_dir():
        t0 = time.perf_counter()
        results["sets"]["bccd-dev"] = run_bccd(folder, methods, args.limit, errors)
        progress("bccd-dev", t0)
    else:
        skip("bccd-dev", f"folder not found: {folder}")
    sets = results["sets"]

    if args.worst_method not in methods:
        skip("worst images", f"--worst-method {args.worst_method} is not among --methods")
    else:
        w = args.worst_method
        for key, tag in WORST_TAGS.items():
            if key not in sets:
                continue
            for old in out.glob(f"worst_{tag}_*.png"):  # from an earlier run
                old.unlink()
            draw = worst_bccd if key == "bccd-dev" else worst_zheng
            results["worst"][key] = draw(sets[key], w, methods[w], data / key, out)

    # one set per size, smallest first: 120x120, 224x224, 300x300, 640x480
    order = ("zheng-wbc-d1", "taleghani-all", "zheng-wbc-d2-dev", "bccd-dev")
    results["timing"] = run_timing({k: sets[k]["paths"] for k in order if k in sets},
                                   methods, args.time_images, errors)

    if any(key in sets for key, _ in ZHENG_SETS):
        emit(zheng_table(sets, names), "")
    if "bccd-dev" in sets:
        emit(bccd_table(sets["bccd-dev"], names), "")
    if "taleghani-all" in sets:
        emit(taleghani_table(sets["taleghani-all"], names), "")
    if results["timing"]:
        emit(timing_table(results["timing"], names), "")
    if results["worst"]:
        shown = out.resolve().relative_to(ROOT) if out.resolve().is_relative_to(ROOT) else out
        emit(f"Worst images of {args.worst_method}: `worst_<set>_<rank>_<stem>.png` in "
             f"`{shown}` (found cells green, nuclei yellow, ground truth red).", "")
    if source_digest() != machine["sources"]:
        results["sources_changed"] = True
        emit("**Warning:** leukfeat's sources changed during the run; rerun.", "")
    results["errors"] = errors
    results["seconds"] = time.perf_counter() - t_start
    emit(errors_section(errors), "", f"Total run time: {results['seconds']:.0f} s")
    (out / "results.md").write_text("\n".join(report) + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    print(f"written {out / 'results.md'} and {out / 'results.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
