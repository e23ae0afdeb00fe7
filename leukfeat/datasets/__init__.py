"""Data sets: a synthetic blood-smear generator and loaders for image folders.

The package is organised in two modules so that the generator and the folder
loaders live side by side without touching each other; everything public is
imported from ``leukfeat.datasets``:

* **Synthetic data** (``synthetic.py``) -- the containers
  :class:`SyntheticCells` (a whole synthetic data set) and :class:`CellSample`
  (one image and its ground truth), and :func:`make_cells`, a deterministic
  procedural generator of Wright/Giemsa-like peripheral-blood-smear images.
  It is the built-in default data of the demo and of the test-suite. Its
  private helpers: argument checks, shape rasterisation, colour.
* **Folder loaders** (``loaders.py``) -- functions that find the images of a
  data set on disk and return a :class:`LabelledImages` (file paths, labels
  and, where the data has them, patient ids for patient-wise splits). No
  image is read.

  * :func:`load_folder` -- any ``<root>/<class>/<image>`` layout;
  * :func:`load_taleghani` -- Taleghani ALL (Benign / Early / Pre / Pro), also
    the original download names and the Original / Segmented copies;
  * :func:`load_cnmc` -- C-NMC 2019 (``training_data/fold_*/{all,hem}``),
    patient ids parsed from the file names;
  * :func:`load_allidb` -- ALL-IDB1 (whole smears) and ALL-IDB2 (single
    cells);
  * :func:`load_pbc` -- PBC Barcelona, 8 normal peripheral-blood cell types;
  * :func:`load_dataset` -- dispatch by loader name (see :data:`LOADERS`).

  A folder that does not match the expected layout raises
  :class:`DatasetLayoutError` (a :class:`ValueError`) whose message shows the
  layout that was expected; a missing folder raises
  :class:`FileNotFoundError`. Recoverable oddities (files whose names do not
  follow a data set's naming scheme, unrecognised sub-folders) are reported
  with a :class:`DatasetWarning`.

Everything produced by :func:`make_cells` is **synthetic**: the images are
painted from simple parametric shapes and colours chosen to resemble stained
smears; they carry no clinical information.
"""

from __future__ import annotations

from .._module_path import set_module as _set_module
from . import loaders, synthetic
from .loaders import (DatasetLayoutError, DatasetWarning, LabelledImages, load_allidb,
                      load_cnmc, load_dataset, load_folder, load_pbc, load_taleghani)
from .synthetic import CellSample, SyntheticCells, make_cells

__all__ = [
    "CellSample", "SyntheticCells", "make_cells", "MASK_CODES",
    "LabelledImages", "DatasetLayoutError", "DatasetWarning",
    "load_folder", "load_taleghani", "load_cnmc", "load_allidb", "load_pbc",
    "LOADERS", "load_dataset", "TALEGHANI_CLASSES", "PBC_CLASSES",
]

#: Pixel values of the compartment maps written by :meth:`SyntheticCells.save`
#: (and returned by :meth:`SyntheticCells.compartments`).
MASK_CODES: dict[str, int] = synthetic.MASK_CODES

#: Canonical class order of the Taleghani ALL data set.
TALEGHANI_CLASSES = loaders.TALEGHANI_CLASSES

#: The eight classes of the PBC data set, in canonical (alphabetical) order.
PBC_CLASSES = loaders.PBC_CLASSES

#: Loader functions by name, as accepted by :func:`load_dataset` (and by the
#: ``--loader`` option of the command line).
LOADERS = loaders.LOADERS

# leukfeat.datasets was one module, leukfeat/datasets.py: its public classes and
# functions keep that module path (leukfeat.datasets.LabelledImages, ...), by which
# pickles name them.
_set_module(__name__, [globals()[name] for name in __all__])
