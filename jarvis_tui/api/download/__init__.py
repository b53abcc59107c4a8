"""Downloading a set's stored bytes: ranges, the set tar, checked reading and sending."""
