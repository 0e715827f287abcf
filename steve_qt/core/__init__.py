"""Qt-free core of steve_qt, one subpackage per domain.

Dependencies go one way: ``errors``, ``events``, ``fileio``, ``frames`` and ``warnings`` (shared
by all) <- ``speech`` <- ``attention`` <- ``models`` <- ``features`` <- ``interventions`` <-
``state`` <- ``figures``. Nothing in this package may import Qt (tests/test_architecture.py).
"""
