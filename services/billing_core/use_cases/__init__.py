"""Use cases: the system's operations, written against the ports and the domain only."""
