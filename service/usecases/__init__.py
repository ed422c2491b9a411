"""The application layer: one module per use case, called by the API, the workers and the CLI.

Each use case takes the wired `Services` and plain inputs, returns domain results and raises
errors of the one hierarchy (service.errors); HTTP, RQ and argparse stay in the entry points
(service/web, workers/, service/cli), which never touch storage themselves. Queue signalling
(usecases.queueing, usecases.signals) lives here too: registering decides what work follows.
"""
