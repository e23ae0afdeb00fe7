"""A sphinx-gallery image scraper for the figures :mod:`leukfeat.plot` returns.

leukfeat's plotting functions return :class:`matplotlib.figure.Figure`
objects that pyplot does not manage (so that a library call never opens a
window or leaks figures), and sphinx-gallery's matplotlib scraper only sees
pyplot's figures. This scraper saves every such figure an example holds in a
variable, once, after the code block that made it.
"""

from __future__ import annotations

from pathlib import PurePosixPath


def _scrape(block, block_vars, gallery_conf, **kwargs):
    from matplotlib.figure import Figure
    from sphinx_gallery.scrapers import figure_rst

    paths = []
    for value in list(block_vars["example_globals"].values()):
        if (isinstance(value, Figure) and value.canvas.manager is None
                and not getattr(value, "_leukfeat_scraped", False)):
            path = PurePosixPath(next(block_vars["image_path_iterator"]))
            value.savefig(path)
            value._leukfeat_scraped = True
            paths.append(path)
    return figure_rst(paths, gallery_conf["src_dir"])


def _get_sg_image_scraper():
    return _scrape
