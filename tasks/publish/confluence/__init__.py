"""Confluence Server/Data Center pages: Known Errors, Known Peaks and the daily report."""
