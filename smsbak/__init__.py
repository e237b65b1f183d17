"""smsbak: back up Android SMS, MMS and calls from Termux into Gmail, IMAP or a Maildir,
and bring them back."""

__version__ = "0.1.0"

import logging as _logging

# Library use stays silent unless the application configures logging.
_logging.getLogger("smsbak").addHandler(_logging.NullHandler())
