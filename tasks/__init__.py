"""The stages of the pipeline, each a plain, typed, testable package.

source → grouping → counting → store → detection → registries → alerts/outbox → exports → publishers
"""
