"""Keep the public names of a module that became a package at their module path."""

import types


def set_module(name: str, objects) -> None:
    """Set ``__module__`` of `objects`, and of the methods their classes define, to `name`.

    When a module becomes a package (``leukfeat/embed.py`` -> ``leukfeat/embed/``)
    its classes and functions move to submodules, but pickles, skops model
    files and their lists of trusted types name a class by ``module.qualname``
    (``leukfeat.embed.TorchEmbedder``). The package's ``__init__`` re-exports
    the names and calls this, so that they keep that path: the same files are
    written and read as before. Methods follow their class, so that doctest
    finds them where it finds the class.

    Parameters
    ----------
    name : str
        The package, e.g. ``"leukfeat.embed"``.
    objects : iterable
        Its public names' values; only classes and functions defined in a
        submodule of `name` are changed (not, e.g., the ``__init__`` that
        :mod:`typing` gives a protocol class, nor constants).
    """
    prefix = name + "."
    for obj in objects:
        members = (obj, *vars(obj).values()) if isinstance(obj, type) else (obj,)
        for member in members:
            member = getattr(member, "__func__", member)  # staticmethod, classmethod
            if (isinstance(member, (type, types.FunctionType))
                    and (member.__module__ or "").startswith(prefix)):
                member.__module__ = name
