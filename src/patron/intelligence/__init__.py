"""Patron intelligence: a pure analytics library.

This package holds statistical models (e.g. the "buy till you die" BG/NBD and
Gamma-Gamma models) that operate on plain numpy arrays. It never imports Django;
callers in the application layer are responsible for extracting data from the ORM
and passing arrays in.
"""
