"""A backend of real parts for the agent to judge, instrumented only by stock packages.

``app`` is the service (Starlette, psycopg, redis-py, the stock OpenTelemetry
instrumentations and Prometheus exporter), ``processes`` starts PostgreSQL, Redis,
Debian's exporters, the app and Prometheus as plain processes on free loopback ports,
``load`` drives a steady request rate, ``stack`` puts them together, switches scenarios
and runs the agent's CLI against the Prometheus. ``samples/`` holds trimmed ``/metrics``
of each target: what the stock parts expose, as evidence for the default queries.
"""
