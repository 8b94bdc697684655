# awe task runner: `make help` lists the targets.
PY ?= python3

.PHONY: help install dev test lint bench schemas

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: ## install awe and its dev tools (pip install -e '.[dev]')
	$(PY) -m pip install -q -e '.[dev]'

dev: install ## start a broker, a worker and the demo workflow (Ctrl-C stops everything)
	$(PY) -m awe dev

test: ## run the whole test suite against a real Kafka broker the session starts
	$(PY) -m pytest

lint: ## ruff and mypy --strict
	$(PY) -m ruff check .
	$(PY) -m ruff format --check agents awe schemas streams gateway
	$(PY) -m mypy

bench: ## the engine benchmark (figures and ratios against raw confluent-kafka)
	$(PY) benchmarks/engine.py

schemas: ## regenerate schemas/jsonschema from the models
	$(PY) -m awe.schemagen
