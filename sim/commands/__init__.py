"""The ``pmsim`` command line: the parser and one module per command family (rules, bench, tune,
replications), with the executors that run sweeps locally or on Dask."""
