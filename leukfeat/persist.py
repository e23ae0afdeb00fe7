"""Safe model files: save and load fitted pipelines with skops, never pickle.

A leukfeat model file (``.skops`` by convention) is a skops archive
(:mod:`skops.io`) holding the fitted estimator together with a metadata
record, so that a model can be shared and reloaded without executing
arbitrary code:

:func:`save_model`
    Write a fitted estimator (a :func:`~leukfeat.models.make_pipeline` or
    :func:`~leukfeat.models.make_classifier` pipeline, or any scikit-learn
    estimator skops can store) with its metadata.
:func:`load_model`
    Check the file, then load the estimator, allowing only the types in
    :data:`TRUSTED_TYPES` (plus those the caller explicitly trusts).
:func:`read_metadata`
    The metadata of a file, read as JSON without loading any object.

File layout
-----------
The skops archive holds the dict ``{"format": "leukfeat-model",
"format_version": 1, "metadata": {...}, "model": <estimator>}``, and one
extra plain-JSON zip member, ``leukfeat-metadata.json``, with a copy of the
metadata and the SHA-256 of the skops members. The JSON copy lets the
version and integrity checks run *before* any object of the file is built,
and lets :func:`read_metadata` work on untrusted files; on load both copies
must agree.

Metadata
--------
``format``, ``format_version``, ``leukfeat_version``, ``versions`` (leukfeat,
Python, numpy, scikit-learn, skops, xgboost), ``created`` (UTC, ISO 8601),
``estimator`` (a readable description), ``steps`` (pipeline step names and
classes), ``classes``, ``n_features_in``, ``feature_names_in``, ``features``
(the :class:`~leukfeat.transformers.FeatureExtractor` of the pipeline: its
step name, parameters and output feature names; None without one) and
``user`` (the ``metadata`` given to :func:`save_model`).

Checks on load
--------------
* missing file: :class:`FileNotFoundError`;
* not a zip / skops archive, a CRC error, a truncated file, members changed
  after writing (checksum mismatch), the two metadata copies disagreeing, or
  malformed model internals: :class:`ModelFileError`;
* a ``format_version`` newer than this leukfeat reads, or a file written by
  a leukfeat version of another major.minor release (``0.1.x`` files load in
  every ``0.1.y``): :class:`ModelFileError` naming both versions and what to
  do;
* any type outside :data:`TRUSTED_TYPES` (and scikit-learn / numpy / scipy
  types that skops trusts by default) that the caller has not passed in
  ``trusted``: :class:`UntrustedModelError`, listing the types.

Native-code model internals that skops cannot vet (the node arrays of
decision trees and of histogram gradient boosting, KD/ball trees, libsvm
support vectors) are checked for consistent shapes and in-range indices
before the model is returned, since scikit-learn indexes into them without
bounds checks; a crafted file fails
with :class:`ModelFileError` instead of crashing the process at predict
time. XGBoost boosters are parsed by XGBoost's own (checked) model loader.

skops is imported on first use.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import platform
import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn

import numpy as np

from ._atomic import atomic_path
from ._json import jsonable

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from ._typing import StrPath

__all__ = [
    "save_model",
    "load_model",
    "read_metadata",
    "ModelFileError",
    "UntrustedModelError",
    "TRUSTED_TYPES",
    "FORMAT",
    "FORMAT_VERSION",
]

#: Value of the ``format`` field of a leukfeat model file.
FORMAT = "leukfeat-model"
#: Newest model-file format this version writes and reads.
FORMAT_VERSION = 1

_METADATA_MEMBER = "leukfeat-metadata.json"

#: Types (as reported by :func:`skops.io.get_untrusted_types`) that
#: :func:`load_model` accepts without being told to: what the leukfeat
#: pipelines of every :data:`~leukfeat.models.CLASSIFIERS` preset (with or
#: without a stain normaliser) contain beyond what skops trusts by default
#: (scikit-learn estimators, numpy and scipy types), and leukfeat's own
#: estimators.
TRUSTED_TYPES = (
    # leukfeat's estimators and the stain targets they hold
    "leukfeat.models.LabelEncodedClassifier",
    "leukfeat.models.HGBClassifier",
    "leukfeat.models.BalancedKNeighborsClassifier",
    "leukfeat.models.EmbeddingColumns",
    "leukfeat.transformers.FeatureExtractor",
    "leukfeat.transformers.StainNormalizer",
    "leukfeat.transformers.Segmenter",
    "leukfeat.transformers.ImageReader",
    "leukfeat.transformers.Resize",
    "leukfeat.transformers.Equalize",
    "leukfeat.preprocess.ReinhardTarget",
    "leukfeat.preprocess.MacenkoTarget",
    # FeatureExtractor.cache_dir_ when a feature cache is used
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    # numpy dtypes held by fitted estimators (e.g. SimpleImputer)
    "numpy.dtype",
    # "knn": the neighbour search structure (checked on load)
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    # "svm": CalibratedClassifierCV(SVC, method="sigmoid") internals
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    # "rf": the trees' node storage (checked on load)
    "sklearn.tree._tree.Tree",
    # "hgb": HistGradientBoostingClassifier's trees (checked on load)
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # "xgboost"
    "xgboost.sklearn.XGBClassifier",
    "xgboost.core.Booster",
    # make_hybrid_vote: VotingClassifier.named_estimators_ (a dict subclass)
    "sklearn.utils._bunch.Bunch",
)


class ModelFileError(ValueError):
    """A model file that cannot be used: not a leukfeat model file, corrupted,
    modified after it was written, or written by an incompatible version."""


class UntrustedModelError(ValueError):
    """A model file holding types that are not trusted.

    Attributes
    ----------
    path : str
        The file.
    types : list of str
        The untrusted types (fully qualified names).
    """

    def __init__(self, message: str, *, path: str = "", types: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.path = path
        self.types = list(types)


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------
def _leukfeat_version() -> str:
    import leukfeat  # read at call time (tests monkeypatch it)
    return str(leukfeat.__version__)


def _dist_version(name: str) -> str | None:
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _release(version: object) -> tuple[int, int] | None:
    """(major, minor) of a version string, None if it has no such prefix."""
    m = re.match(r"\s*v?(\d+)\.(\d+)", str(version))
    return (int(m.group(1)), int(m.group(2))) if m else None


def _compatible(written: object, running: object) -> bool:
    """Whether a file written by leukfeat ``written`` may be loaded by ``running``."""
    a, b = _release(written), _release(running)
    if a is None or b is None:
        return str(written) == str(running)
    return a == b


def _type_name(obj_or_type: object) -> str:
    t = obj_or_type if isinstance(obj_or_type, type) else type(obj_or_type)
    return f"{t.__module__}.{t.__qualname__}"



def _describe_param(value: Any) -> Any:
    """A JSON-friendly description of an estimator parameter."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_describe_param(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _describe_param(v) for k, v in value.items()}
    if callable(value):
        import functools
        if isinstance(value, functools.partial):
            return f"functools.partial({_describe_param(value.func)}, ...)"
        mod = getattr(value, "__module__", None) or "?"
        qual = getattr(value, "__qualname__", None) or type(value).__qualname__
        return f"{mod}.{qual}"
    return repr(value)


def _walk_steps(estimator: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(step path, estimator) of every step of nested pipelines and feature unions."""
    steps = getattr(estimator, "steps", None)
    if not isinstance(steps, list):
        steps = getattr(estimator, "transformer_list", None)  # FeatureUnion
    if isinstance(steps, list):
        for name, step in steps:
            path = f"{prefix}{name}"
            yield path, step
            yield from _walk_steps(step, f"{path}__")


def _describe_estimator(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    inner: Any
    if isinstance(steps, list):
        inner = ", ".join(f"{n}={_describe_estimator(s)}" for n, s in steps)
        return f"{type(estimator).__name__}({inner})"
    inner = getattr(estimator, "estimator", None)
    if inner is not None and hasattr(inner, "get_params"):
        return f"{type(estimator).__name__}({_describe_estimator(inner)})"
    return type(estimator).__name__


def _jsonable_config(key: dict[str, Any]) -> dict[str, Any]:
    """A FeatureConfig key with tuples as lists (JSON)."""
    return json.loads(json.dumps(key, default=list))


def _feature_config(model: Any) -> dict[str, Any] | None:
    from .transformers import FeatureExtractor
    candidates = [(p, s) for p, s in _walk_steps(model)]
    candidates.insert(0, ("", model))
    for path, step in candidates:
        if isinstance(step, FeatureExtractor):
            from .extract import FeatureConfig

            names = getattr(step, "feature_names_out_", None)
            params = {k: _describe_param(v) for k, v in step.get_params(deep=False).items()}
            return {
                "step": path,
                "extractor": _type_name(step),
                "params": params,
                # what the columns are (groups in column order, cell, every option)
                "config": _jsonable_config(FeatureConfig(step.groups, step.cell,
                                                         step.options).cache_key()),
                "feature_names": None if names is None else [str(n) for n in names],
                "n_features": None if names is None else len(names),
            }
    return None


def _build_metadata(model: Any, user: Any) -> dict[str, Any]:
    import sys

    version = _leukfeat_version()
    classes = getattr(model, "classes_", None)
    names_in = getattr(model, "feature_names_in_", None)
    n_in = getattr(model, "n_features_in_", None)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "leukfeat_version": version,
        "versions": {
            "leukfeat": version,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scikit-learn": _dist_version("scikit-learn"),
            "skops": _dist_version("skops"),
            "xgboost": _dist_version("xgboost"),
        },
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": sys.platform,
        "estimator": _describe_estimator(model),
        "steps": [[p, _type_name(s)] for p, s in _walk_steps(model)],
        "classes": None if classes is None else _describe_param(np.asarray(classes).tolist()),
        "n_features_in": None if n_in is None else int(n_in),
        "feature_names_in": None if names_in is None else [str(n) for n in names_in],
        "features": _feature_config(model),
        "user": user,
    }
    # canonical plain JSON, identical to what json.loads gives back
    return json.loads(json.dumps(jsonable(meta, "metadata", strict=True), allow_nan=False))


def _payload_digest(zf: zipfile.ZipFile) -> str:
    """SHA-256 over the names and contents of every member but the metadata."""
    h = hashlib.sha256()
    for name in sorted(zf.namelist()):
        if name == _METADATA_MEMBER:
            continue
        data = zf.read(name)
        h.update(name.encode("utf-8"))
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _check_fitted(model: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        raise ValueError(f"model: {type(model).__name__} is not fitted; fit it before "
                         "saving") from None
    except TypeError:  # not a scikit-learn estimator: nothing to check
        pass


# --------------------------------------------------------------------------
# save
# --------------------------------------------------------------------------
def save_model(model: Any, path: StrPath, *, metadata: dict[str, Any] | None = None) -> Path:
    """Save a fitted estimator to a skops model file, with its metadata.

    Parameters
    ----------
    model : estimator
        A fitted estimator, typically a :func:`~leukfeat.models.make_pipeline`
        or :func:`~leukfeat.models.make_classifier` pipeline. It must hold
        only objects skops can store (a callable ``segmenter`` must be a
        module-level function, not a lambda).
    path : str or os.PathLike
        Output file (``.skops`` by convention); missing parent folders are
        created and an existing file is replaced atomically (a killed process
        never leaves a partial file under this name). Feature caches
        (``FeatureExtractor(cache=...)``) are not stored: the file holds
        ``cache=None``, the model itself is left as it is.
    metadata : dict, optional
        Extra information kept under ``"user"`` in the metadata (e.g. data
        set, command line); string keys and JSON values only.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If `model` is not an estimator, `metadata` is not a dict of JSON
        values, or the model holds an object skops cannot store.
    ValueError
        If `model` is not fitted.

    See Also
    --------
    load_model, read_metadata

    Examples
    --------
    >>> import tempfile, os
    >>> from sklearn.datasets import make_classification
    >>> from leukfeat.models import make_classifier
    >>> from leukfeat.persist import save_model, load_model, read_metadata
    >>> X, y = make_classification(60, 5, random_state=0)
    >>> model = make_classifier("logreg").fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skops")
    >>> _ = save_model(model, path, metadata={"data": "demo"})
    >>> bool((load_model(path).predict_proba(X) == model.predict_proba(X)).all())
    True
    >>> read_metadata(path)["user"]
    {'data': 'demo'}
    """
    if not hasattr(model, "fit") or not (hasattr(model, "predict")
                                         or hasattr(model, "transform")):
        raise TypeError(f"model: expected a fitted scikit-learn estimator, got "
                        f"{type(model).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata: expected None or a dict, got {type(metadata).__name__}")
    _check_fitted(model)
    user = jsonable({} if metadata is None else metadata, "metadata", strict=True)
    meta = _build_metadata(model, user)

    import skops.io as sio

    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "metadata": meta,
               "model": model}
    restore = _set_caches(model, None)    # a file never says where to write
    try:
        data = sio.dumps(payload, compression=zipfile.ZIP_DEFLATED)
    except Exception as exc:
        raise TypeError(f"model: cannot be saved safely with skops: {type(exc).__name__}: "
                        f"{exc}") from exc
    finally:
        restore()
    # skops stores functions and classes by name: make sure they can be found
    # again (a lambda or a locally defined function is dumped but cannot be
    # loaded). Loading our own, just-dumped object is safe.
    try:
        sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    except Exception as exc:
        raise TypeError(f"model: skops can store it but not load it back "
                        f"({type(exc).__name__}: {exc}); use module-level functions and "
                        "classes (no lambdas or local definitions) in the model") from None
    buf = io.BytesIO(data)
    with zipfile.ZipFile(buf, "r") as zf:
        digest = _payload_digest(zf)
    info = dict(meta, payload_sha256=digest)
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(_METADATA_MEMBER, json.dumps(info, indent=1, sort_keys=True) + "\n")

    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())
    return path


# --------------------------------------------------------------------------
# read / check
# --------------------------------------------------------------------------
def _check_path(path: StrPath) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(errno.ENOENT, "model file not found", str(p))
    if not p.is_file():
        raise ModelFileError(f"{p}: not a model file (it is a directory or special file)")
    return p


#: The members :func:`save_model` writes: skops' schema and arrays (numpy
#: ``<id>.npy``, scipy sparse ``<id>.npz``, raw bytes such as an XGBoost
#: booster ``<uuid>.bin``) and leukfeat's metadata.
_MEMBER_NAME = re.compile(r"(schema\.json|leukfeat-metadata\.json|\d+\.np[yz]|"
                          r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.bin)")
#: A member may expand to at most this many times its compressed size (or
#: 1 MiB): model arrays compress up to about 60x, a zip bomb by 1000x.
_MAX_EXPANSION = 200
_MIN_MEMBER_LIMIT = 1 << 20


def _check_members(p: Path, zf: zipfile.ZipFile) -> None:
    """Refuse, before reading any member, a name :func:`save_model` does not
    write and a member that would expand beyond :data:`_MAX_EXPANSION` times
    its compressed size (zip bombs)."""
    for info in zf.infolist():
        if not _MEMBER_NAME.fullmatch(info.filename):
            raise ModelFileError(f"{p} holds a member leukfeat does not write "
                                 f"({info.filename!r}); refusing to load it")
        limit = max(_MIN_MEMBER_LIMIT, _MAX_EXPANSION * info.compress_size)
        if info.file_size > limit:
            raise ModelFileError(f"{p} holds a member that would expand to "
                                 f"{info.file_size:,} bytes from {info.compress_size:,} "
                                 f"({info.filename!r}); refusing to load it")


def _read_info(p: Path, *, verify: bool) -> dict[str, Any]:
    """The JSON metadata member; with ``verify``, CRCs and the payload checksum too."""
    what = "is not a leukfeat model file"
    try:
        with zipfile.ZipFile(p, "r") as zf:
            names = zf.namelist()
            if "schema.json" not in names:
                raise ModelFileError(f"{p} {what} (no skops schema in the archive)")
            if _METADATA_MEMBER not in names:
                raise ModelFileError(
                    f"{p} {what} (a skops archive without leukfeat metadata; "
                    "save models with leukfeat.persist.save_model)")
            _check_members(p, zf)
            if verify:
                bad = zf.testzip()
                if bad is not None:
                    raise ModelFileError(f"{p} is corrupted (CRC error in member {bad!r})")
            raw = zf.read(_METADATA_MEMBER)
            digest = _payload_digest(zf) if verify else None
    except ModelFileError:
        raise
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f"{p} {what} or is corrupted (bad zip archive: {exc})") from None
    except Exception as exc:  # OSError, EOFError, zlib.error, struct.error, ...
        raise ModelFileError(f"{p} is corrupted ({type(exc).__name__}: {exc})") from None
    try:
        info = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ModelFileError(f"{p} is corrupted (unreadable leukfeat metadata)") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ModelFileError(f"{p} {what} (metadata format is not {FORMAT!r})")
    fv = info.get("format_version")
    if not isinstance(fv, int) or isinstance(fv, bool) or fv < 1:
        raise ModelFileError(f"{p} is corrupted (invalid format_version {fv!r})")
    if verify and info.get("payload_sha256") != digest:
        raise ModelFileError(f"{p} was modified after it was written (checksum mismatch); "
                             "refusing to load it")
    return info


def _check_versions(p: Path, info: dict[str, Any]) -> None:
    running = _leukfeat_version()
    written = info.get("leukfeat_version", "unknown")
    fv = info["format_version"]
    if fv > FORMAT_VERSION:
        raise ModelFileError(
            f"{p} uses model-file format {fv} (written by leukfeat {written}); this "
            f"leukfeat {running} reads format {FORMAT_VERSION} or older. Upgrade leukfeat "
            f"(pip install 'leukfeat=={written}') to load it.")
    if not _compatible(written, running):
        rel = _release(running)
        series = f"{rel[0]}.{rel[1]}.x" if rel else running
        raise ModelFileError(
            f"{p} was written by leukfeat {written}, but this is leukfeat {running}, which "
            f"only loads models written by leukfeat {series} (features and models may "
            f"differ between releases). Re-train and save the model with leukfeat "
            f"{running}, or install leukfeat=={written} to use this file.")


def read_metadata(path: StrPath) -> dict[str, Any]:
    """The metadata of a model file, without loading the model.

    Only the plain-JSON metadata member is read, so this is safe on any
    file and needs no trusted types; it does not check the version, the
    checksum or the types (:func:`load_model` does).

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save_model`.

    Returns
    -------
    dict
        The metadata (see the module docstring), including
        ``"payload_sha256"``.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ModelFileError
        If `path` is not a leukfeat model file or is unreadable.
    """
    return _read_info(_check_path(path), verify=False)


def _trusted_names(trusted: Any) -> list[str]:
    if trusted is None:
        return []
    if isinstance(trusted, bool):
        raise TypeError("trusted: expected a list of type names (e.g. the types listed by "
                        "UntrustedModelError), not a bool; trusting everything is not "
                        "supported")
    if isinstance(trusted, (str, type)):
        trusted = [trusted]
    out = []
    for t in trusted:
        if isinstance(t, type):
            out.append(_type_name(t))
        elif isinstance(t, str):
            out.append(t)
        else:
            raise TypeError(f"trusted: expected type names (str) or types, got {t!r}")
    return out


def load_model(path: StrPath, *, trusted: Iterable[str | type] | str | type | None = None) -> Any:
    """Load a model saved by :func:`save_model`, trusting only known types.

    The file is checked before any of its objects is built: before any
    member is read, its member names must be those :func:`save_model`
    writes and no member may expand beyond 200 times its compressed size
    (zip bombs); it must be an intact leukfeat model file (zip CRCs and the
    SHA-256 of its members),
    of a format this version reads and written by a compatible leukfeat
    release (the same major.minor), and every type it holds must be trusted
    by skops, be in :data:`TRUSTED_TYPES` or be listed in `trusted`.

    Parameters
    ----------
    path : str or os.PathLike
        The model file.
    trusted : sequence of str or type, optional
        Extra types to trust, by fully qualified name as listed by
        :class:`UntrustedModelError` (e.g. the classes of a custom
        estimator). Only list types of files you trust.

    Returns
    -------
    estimator
        The fitted estimator as saved, without any feature cache: a model
        file cannot choose where leukfeat writes (``cache`` parameters are
        None; set one after loading to use a cache). Its metadata is
        available with :func:`read_metadata`.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ModelFileError
        If the file is not a leukfeat model file, is corrupted or was
        modified, has malformed model internals, or was written by an
        incompatible leukfeat version or a newer file format.
    UntrustedModelError
        If the file holds types that are not trusted.
    TypeError
        If `trusted` is not a list of type names or types.
    """
    trusted_extra = _trusted_names(trusted)
    p = _check_path(path)
    info = _read_info(p, verify=True)
    _check_versions(p, info)

    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        found = sio.get_untrusted_types(file=p)
    except Exception as exc:
        raise ModelFileError(f"{p} is corrupted (invalid skops schema: "
                             f"{type(exc).__name__}: {exc})") from None
    allowed = set(TRUSTED_TYPES) | set(trusted_extra)
    bad = sorted(set(found) - allowed)
    if bad:
        listing = ", ".join(repr(t) for t in bad)
        raise UntrustedModelError(
            f"{p} holds types that are not trusted: {listing}. Loading a model file can "
            f"run the code of the types it holds; if you trust this file, load it with "
            f"load_model(path, trusted=[{listing}]).", path=str(p), types=bad)
    try:
        obj = sio.load(p, trusted=list(found))
    except UntrustedTypesFoundException as exc:  # pragma: no cover - checked above
        raise UntrustedModelError(f"{p}: {exc}", path=str(p)) from None
    except Exception as exc:
        raise ModelFileError(f"{p} could not be loaded ({type(exc).__name__}: {exc}); "
                             "the file is corrupted or was written by incompatible "
                             "library versions") from None
    meta = {k: v for k, v in info.items() if k != "payload_sha256"}
    if (not isinstance(obj, dict) or obj.get("format") != FORMAT
            or "model" not in obj or obj.get("metadata") != meta):
        raise ModelFileError(f"{p} is inconsistent (its metadata does not match the stored "
                             "model; the file was modified); refusing to load it")
    model = obj["model"]
    _validate_internals(model, p)
    _set_caches(model, None)       # even a crafted file cannot choose where predict writes
    return model


def _set_caches(model: Any, value: Any) -> Callable[[], None]:
    """Set every feature cache of ``model`` (each ``cache`` parameter, deep,
    and the ``cache_dir_`` it fitted) to ``value``; returns a function that
    restores the previous ones."""
    undo: list[tuple[Any, str, Any, bool]] = []
    if not hasattr(model, "get_params"):
        return lambda: None
    try:
        params = model.get_params(deep=True)
    except Exception:                  # not a scikit-learn estimator after all
        return lambda: None
    owners = [model] + [v for v in params.values() if hasattr(v, "get_params")]
    for est in owners:
        try:
            own = est.get_params(deep=False)
        except Exception:
            continue
        if own.get("cache", None) is not None:
            undo.append((est, "cache", own["cache"], True))
            est.set_params(cache=value)
        if getattr(est, "cache_dir_", None) is not None:
            undo.append((est, "cache_dir_", est.cache_dir_, False))
            est.cache_dir_ = value

    def restore() -> None:
        for est, name, old, is_param in reversed(undo):
            if is_param:
                est.set_params(**{name: old})
            else:
                setattr(est, name, old)
    return restore


# --------------------------------------------------------------------------
# structural checks of native-code internals
# --------------------------------------------------------------------------
def _fail(p: object, what: str) -> NoReturn:
    raise ModelFileError(f"{p} holds a malformed {what}; the file is corrupted or was "
                         "crafted, refusing to load it")


def _check_tree(tree: Any, p: object, n_features_expected: int | None) -> None:
    """sklearn.tree._tree.Tree: counts, child links and split features in range."""
    n = int(tree.node_count)
    if n < 1 or n > int(tree.capacity):
        _fail(p, "decision tree (node count)")
    if n_features_expected is not None and int(tree.n_features) != int(n_features_expected):
        _fail(p, "decision tree (number of features)")
    left = np.asarray(tree.children_left)
    right = np.asarray(tree.children_right)
    feat = np.asarray(tree.feature)
    if not (left.shape == right.shape == feat.shape == (n,)):
        _fail(p, "decision tree (node arrays)")
    leaf = left == -1
    idx = np.arange(n)
    internal = ~leaf
    # sklearn numbers children after their parent: links go forward, so no cycles
    ok = (np.all(right[leaf] == -1)
          and np.all((left[internal] > idx[internal]) & (left[internal] < n))
          and np.all((right[internal] > idx[internal]) & (right[internal] < n))
          and np.all((feat[internal] >= 0) & (feat[internal] < int(tree.n_features))))
    if not ok:
        _fail(p, "decision tree (child or feature index out of range)")
    value = np.asarray(tree.value)
    if value.shape[0] != n:
        _fail(p, "decision tree (values)")


def _check_hist_tree(tree: Any, p: object, n_features_expected: int | None) -> None:
    """HistGradientBoosting's TreePredictor: the node record type, child links
    and split features in range, no categorical splits (the leukfeat presets
    make none; their bitset lookups cannot be checked here)."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    nodes = getattr(tree, "nodes", None)
    if not isinstance(nodes, np.ndarray) or nodes.dtype != PREDICTOR_RECORD_DTYPE \
            or nodes.ndim != 1 or nodes.shape[0] < 1:
        _fail(p, "gradient-boosting tree (node array)")
    n = nodes.shape[0]
    leaf = nodes["is_leaf"] != 0
    internal = ~leaf
    idx = np.arange(n)
    left = nodes["left"].astype(np.int64)
    right = nodes["right"].astype(np.int64)
    feat = nodes["feature_idx"].astype(np.int64)
    # children are numbered after their parent (depth first): no cycles
    ok = (np.all((left[internal] > idx[internal]) & (left[internal] < n))
          and np.all((right[internal] > idx[internal]) & (right[internal] < n))
          and np.all(feat[internal] >= 0)
          and (n_features_expected is None
               or np.all(feat[internal] < int(n_features_expected))))
    if not ok:
        _fail(p, "gradient-boosting tree (child or feature index out of range)")
    if np.any(nodes["is_categorical"][internal] != 0):
        _fail(p, "gradient-boosting tree (categorical splits are not supported in "
                 "model files)")


def _check_binary_tree(tree: Any, p: object, n_features_expected: int | None) -> None:
    """KDTree / BallTree: array shapes and index ranges used by the C query code."""
    try:
        state = tree.__getstate__()
        data, idx_array, node_data, node_bounds = (np.asarray(a) for a in state[:4])
        leaf_size, n_levels, n_nodes = int(state[4]), int(state[5]), int(state[6])
    except Exception:
        _fail(p, "neighbour tree")
    if data.ndim != 2:
        _fail(p, "neighbour tree (data)")
    n_samples, n_feat = data.shape
    ok = (leaf_size >= 1 and 0 <= n_levels < 64 and n_nodes == 2 ** n_levels - 1
          and idx_array.shape == (n_samples,)
          and (n_samples == 0 or (idx_array.min() >= 0 and idx_array.max() < n_samples))
          and node_data.shape == (n_nodes,)
          and node_bounds.ndim == 3 and node_bounds.shape[1:] == (n_nodes, n_feat)
          and (n_features_expected is None or n_feat == int(n_features_expected)))
    if ok and n_nodes:
        start = np.asarray(node_data["idx_start"])
        end = np.asarray(node_data["idx_end"])
        ok = bool(np.all((start >= 0) & (start <= end) & (end <= n_samples)))
    if not ok:
        _fail(p, "neighbour tree (array shapes or indices out of range)")


def _check_libsvm(est: Any, p: object) -> None:
    """Fitted SVC/NuSVC: support-vector arrays consistent with each other."""
    try:
        n_sv = np.asarray(est._n_support)
        sv = est.support_vectors_
        support = np.asarray(est.support_)
        dual = np.asarray(est._dual_coef_)
        intercept = np.asarray(est._intercept_)
    except AttributeError:
        return
    n_class = n_sv.shape[0] if n_sv.ndim == 1 else -1
    total = int(n_sv.sum()) if n_class > 0 else -1
    rows = sv.shape[0] if getattr(sv, "ndim", 0) == 2 else -1
    ok = (n_class >= 1 and np.all(n_sv >= 0) and total == rows == support.shape[0]
          and (support.size == 0 or (support.min() >= 0))
          and dual.ndim == 2 and dual.shape[1] == total
          and dual.shape[0] == max(n_class - 1, 1)
          and intercept.shape == (max(n_class * (n_class - 1) // 2, 1),))
    n_in = getattr(est, "n_features_in_", None)
    if ok and n_in is not None and getattr(est, "kernel", None) != "precomputed":
        ok = sv.shape[1] == n_in
    if not ok:
        _fail(p, "support vector machine (support-vector arrays)")


def _validate_internals(model: Any, p: object) -> None:
    """Walk the loaded object graph and check every native-code structure in it."""
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.neighbors._ball_tree import BallTree
    from sklearn.neighbors._kd_tree import KDTree
    from sklearn.svm._base import BaseSVC
    from sklearn.tree._tree import Tree

    seen = set()
    stack = [(model, None)]
    while stack:
        obj, owner = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, bytearray,
                                                               int, float, bool)):
            continue
        seen.add(id(obj))
        n_in = getattr(owner, "n_features_in_", None) if owner is not None else None
        if isinstance(obj, Tree):
            _check_tree(obj, p, n_in)
            continue
        if isinstance(obj, TreePredictor):
            _check_hist_tree(obj, p, n_in)
            continue
        if isinstance(obj, (KDTree, BallTree)):
            _check_binary_tree(obj, p, n_in)
            continue
        if isinstance(obj, BaseSVC):
            _check_libsvm(obj, p)
        if isinstance(obj, dict):
            stack.extend((v, owner) for v in obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend((v, owner) for v in obj)
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend((v, owner) for v in obj.ravel())
        else:
            mod = type(obj).__module__ or ""
            if mod.split(".")[0] in ("sklearn", "leukfeat", "xgboost", "skops") \
                    or hasattr(obj, "get_params"):
                attrs = getattr(obj, "__dict__", None)
                if isinstance(attrs, dict):
                    stack.extend((v, obj) for v in attrs.values())
