"""The billing domain: pure types and rules, no I/O."""
