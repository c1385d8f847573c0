"""The developer tooling behind manage_all.py: one module per responsibility, around one typed model of
the system (`devtools.topology`, read from topology.toml) that every renderer, benchmark and tool uses.

`devtools.topology` and `devtools.bootstrap` use the standard library alone (the gateway's image and the
first run of manage_all.py, before the virtualenv exists, import them); everything else runs inside the
virtualenv that `bootstrap` makes.
"""
