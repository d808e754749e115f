"""Custom Lava processes used by the neurocompile lowering.

Lava's compiler imports every module next to a Process (and executes every
``.py`` file in that folder) while searching for ProcessModels, so each
process lives in its own sub-package holding only ``process.py`` (the
interface) and ``models.py`` (its float / fixed-point ProcessModels), as in
``lava/proc/``. Nothing in these packages may have import side effects beyond
installing :mod:`neurocompile_lava.compat`.
"""
