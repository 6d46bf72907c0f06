"""Shared machinery: atomic writes, configuration, code tracking, errors."""
