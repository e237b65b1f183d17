"""smsbak: back up Android SMS from Termux into Gmail, and bring them back."""

__version__ = "0.1.0"
