# The two commands of the README:
#   make demo   set up and run the studio's main job on this machine
#   make test   set up and run every test (ruff, mypy, pytest)
.PHONY: setup demo test lint

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/vstudio demo --once

lint:
	.venv/bin/ruff check vstudio tests bench
	.venv/bin/mypy vstudio

test:
	bash scripts/setup.sh --tests
	$(MAKE) lint
	.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 tests; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc
