"""`streetsense demo`: a supervisor that runs the whole city on embedded defaults.

The kernel imports nothing of ours, so the demo starts every room as a `streetsense <command>`
subprocess; only third-party services (an amqtt broker, an embedded PostgreSQL) run here.
"""
