"""Adapters of :class:`smsbak.ports.Destination`: where the emails go.

Each module talks to one outside thing (an IMAP server, a Maildir folder) or to
nothing at all (``memory``, the twin the engine tests run against). Adapters import
only ports, the codec and the model; the wiring (``smsbak.app``) chooses one.
"""
