#!/usr/bin/env python3
"""Developer entry point of the order platform: install, provision, run and test it with one command.

    python3 manage_all.py up                 # check infrastructure, install, provision, migrate, start, wait
    python3 manage_all.py up --scale catalog=2   # the same, with two catalog web instances behind nginx
    python3 manage_all.py status             # every process's state and each service's readiness
    python3 manage_all.py logs identity -f   # follow one service's process logs
    python3 manage_all.py logs --correlation ID   # one flow's lines from every process, in time order
    python3 manage_all.py test               # every test suite, one process each, then a summary
    python3 manage_all.py down               # stop everything

The work is done by the devtools package (one module per responsibility, around the typed model of
topology.toml in devtools/topology.py; docs/development.md has the map). This file only makes sure the
interpreter can run it: it starts on the system's python3, and devtools.bootstrap re-executes it under
the project's virtualenv (.venv) once that exists.
"""

import sys

if sys.version_info < (3, 11):  # noqa: UP036 (the point: an older python3 must get a sentence, not a traceback)
    sys.exit("manage_all.py needs Python 3.11 or newer")

from devtools.cli import main  # after the version check, which must run on any Python

if __name__ == "__main__":
    sys.exit(main())
