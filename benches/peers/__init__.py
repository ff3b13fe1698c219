"""The parts of ``compare_peers.py``: per-engine runners (children), the build, the machine,
the parent's driver and the report."""
