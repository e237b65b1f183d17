"""Adapters of :class:`smsbak.ports.Source`: where records come from.

The phone readers live in ``smsbak.phone`` (Termux:API, Shizuku/root); ``memory``
is the twin the engine tests run against.
"""
