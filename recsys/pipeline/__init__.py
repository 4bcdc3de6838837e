"""The jobs behind the three programs: what runs in which order against the feature store and registry.

``recsys.features`` computes frames without I/O; this package reads sources, validates, writes feature groups
and creates feature views through the store seam (:mod:`recsys.store`), so the CLIs and notebooks stay thin.
"""
