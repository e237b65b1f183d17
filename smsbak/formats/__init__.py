"""Files that other SMS apps import: SMS Backup & Restore XML and SMS Import / Export ZIP."""
