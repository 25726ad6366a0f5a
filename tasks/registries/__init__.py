"""Registries: known errors (problems) and known peaks, their backup/restore, and retention."""
