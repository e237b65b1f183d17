"""The codec, about to be split into one module per concern (next commit)."""

from smsbak.mime.mms import *  # noqa: F403
