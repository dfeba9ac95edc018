"""Capabilities of the portal. Each takes a Session and an Actor, flushes, never commits."""
