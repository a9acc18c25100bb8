"""Behaviour the A1111 v1.10.1 and Forge dfdcbab6 stand-ins share (the hosts' code is the same there)."""
