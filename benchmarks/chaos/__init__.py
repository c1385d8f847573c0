"""The chaos engine: a steady open-loop order load through the gateway, one real fault in the middle, then
the global invariants read from every service's database (docs/reliability.md).

- `load`: the scenario and the load (orders placed, what each client saw);
- `faults`: the faults by name and `inject`; how each is caused lives in `processes` (killed or held by
  pid), `messages` (bad, redelivered or late messages) and `infrastructure` (Redis, RabbitMQ, Postgres
  through their own control tools, and the links through `proxy`, a fault-injecting TCP proxy);
- `invariants`: what must hold once the platform is quiet, read from the databases, the broker, the
  mail folder and the provider sandbox;
- `engine`: `run_scenario`, which ties them together and returns a `Report`.

benchmarks/fault_load.py runs one scenario from the command line; tests/chaos runs the core set (CI) or,
with `manage_all.py test chaos --full`, every scenario.
"""
