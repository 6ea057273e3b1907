"""Conformance harness: a real tritonserver, the proxy in front of it, and real Triton clients."""
