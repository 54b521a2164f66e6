"""hookline's benchmark: end-to-end throughput, latency, memory and isolation on the real stack.

Run `python -m bench.run --help`. Not part of the test suite; tests/bench only smoke-tests it.
"""
