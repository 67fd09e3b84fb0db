"""Servers that other processes talk to while capture runs (the statistics socket)."""
