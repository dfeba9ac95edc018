"""`portal bench`: seed a throwaway database, serve it under gunicorn, measure, report.

A face like portal.cli and portal.web: it may use services, jobs and the wiring; nothing
below imports it. Modules: certs (fast distinct certificates), seed (bulk rows), serve
(gunicorn beside a bare Flask route), http (keep-alive clients), drive (page timings),
work (campaign, outbox delivery, run-due), report (machine, table, JSON), run (the whole).
"""
