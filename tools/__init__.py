"""Tools that measure and experiment: bench.py, measure.py, sweep.py, compare.py, verdicts.py.

Each runs as `python tools/NAME.py` from the kit's top folder; they import the lesson and machinery/, and
nothing in the lesson imports them.
"""
