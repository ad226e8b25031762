"""Benchmarks: ``python -m tools.bench NAME [ARGS]`` runs ``tools/bench/NAME.py``'s ``main(argv)``.

Each benchmark prints its figures and writes JSON (and Markdown where it makes a table) under tools/bench/results/.
"""
