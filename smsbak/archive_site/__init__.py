"""An offline, searchable HTML archive of the backup: static pages any browser opens.

Pure: takes decoded records and a folder, knows nothing of Gmail, the phone or the
engines (the restore target adapter in ``smsbak.html_target`` connects it).
"""

from smsbak.archive_site.builder import BuildReport, SiteBuilder

__all__ = ["BuildReport", "SiteBuilder"]
