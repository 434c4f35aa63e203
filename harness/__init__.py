"""What tests and benchmarks both drive: private services, real processes, fault injectors.

Not shipped (pyproject packages) and imported by no room; tests/ and bench/ share it, so bench/
never imports tests/.
"""
