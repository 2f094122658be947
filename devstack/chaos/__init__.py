"""`make chaos`: the same bounded workload and the same faults against two lock strategies.

For each strategy, on a Redis and a MongoDB-wire server of its own: 2 invoices
and 3 orders instances, LOCK_TTL_MS=400, and a small pause inside every
critical section (a stand-in for real work). The run has three phases:

1. **paused holder**, on a quiet system: the scripted scenario of
   `devstack.scenarios`, on an order and two orders instances of its own, which
   breaks the naive lock by construction;
2. **load and faults**: while 8 clients send updates and deletes
   (`devstack.workload`), a fault injector freezes a random orders instance
   (SIGSTOP) for twice the lease, kills one (SIGKILL) and starts it again, or
   cuts one off from Redis, MongoDB or its invoices (a blackholed link of
   `devstack.links`) for twice the lease; once it kills Redis and starts it
   again empty, and once it jumps Redis's clock forward past the lease
   (libfaketime, `devstack.clock`); at the end it freezes all but orders-0
   across the end of the load;
3. **check**: after a lease time plus a repair interval, the independent
   checker, which looks only at what HTTP shows.

Strategies:

- **naive (UNSAFE)**: the Go original: SET NX with a TTL and the value "1",
  the invoice checks only that a lock key exists, unconditional writes, and a
  failed request deletes whatever lock is there. Selected with
  DLOCK_UNSAFE_NAIVE=1, which needs DLOCK_TEST_MODE=1;
- **fenced**: this project: FencedLock leases, fencing tokens checked where
  the writes land, intents and the repairer.

The modules, one job each: `stage` (the servers and instances of one strategy),
`faults` (the registry of faults, which the report reads too), `schedule`
(when they come), `run` (one strategy, phase by phase), `results` (the table,
the summary, the verdict) and `__main__` (the command line).

Every operation and fault goes to `<dir>/<strategy>/history.jsonl`, and the
report to `<dir>/report.html` with `<dir>/summary.json` beside it. Exit status
0 when the demonstration held: the fenced strategy shows no anomaly and the
naive one at least one. Options: --calls N, --seconds S, --seed N, --logs DIR
(where the histories, the report and the service logs go; a new temporary
folder otherwise).
"""
