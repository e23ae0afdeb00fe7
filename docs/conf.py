"""Sphinx configuration for the leukfeat documentation."""

import leukfeat

project = "leukfeat"
release = leukfeat.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.doctest"]
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
html_theme = "alabaster"
