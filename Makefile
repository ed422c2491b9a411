# Chronoseal: `make run` starts the whole service on embedded defaults, `make test` runs the suite.
.PHONY: venv run test lint bench-tsa

venv:
	@scripts/venv.sh

run: venv
	.venv/bin/chronoseal up

test: venv
	.venv/bin/python -m pytest -q $(PYTEST_ARGS)

lint: venv
	.venv/bin/ruff check service workers tests bench examples integrations
	.venv/bin/mypy --strict --ignore-missing-imports service/timestamping service/evidence service/storage service/webhooks service/usecases

bench-tsa: venv
	.venv/bin/python bench/tsa.py
