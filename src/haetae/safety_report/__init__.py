"""The periodic financial safety report: fraud trends, what was detected and prevented,
reports handled and how fast, notices sent; as JSON, HTML and PDF with charts.

Entry points: :func:`haetae.safety_report.service.make_report` (and ``make_report_async``),
``GET /v1/reports/safety`` (:mod:`.api`) and ``haetae report safety`` (:mod:`.cli`). Kept
free of imports so that loading the CLI does not load SQLAlchemy, Jinja2 and the models."""
