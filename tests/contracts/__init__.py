"""Contract suites: one per port, run by every implementation of it.

A destination, source or target is done when its subclass of the contract passes
(``test_<adapter>_contract.py`` beside this file). The contract classes carry no
``Test`` prefix, so pytest collects them only through those subclasses.
"""
