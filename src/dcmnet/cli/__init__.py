"""The ``dcmnet`` command line: :mod:`dcmnet.cli.main` dispatches to one module per verb group.

* :mod:`~dcmnet.cli.train` — ``train``, ``evaluate``; :mod:`~dcmnet.cli.tune` — ``tune``;
* :mod:`~dcmnet.cli.analysis` — ``analyze``, ``compare``, ``plot``, ``predict``, ...;
* :mod:`~dcmnet.cli.data` — ``inspect``, ``convert``, ...; :mod:`~dcmnet.cli.models` —
  ``models``; :mod:`~dcmnet.cli.export` — ``export``; :mod:`~dcmnet.cli.generate` —
  ``generate``.

Each verb module only builds its parser at import time (no JAX), so ``dcmnet --help`` and
``dcmnet generate`` stay fast. A new verb is a module here with ``add_parsers(sub)`` listed in
:func:`dcmnet.cli.main._command_modules`.
The console script is ``dcmnet.cli.main:main``; nothing is imported here.
"""
