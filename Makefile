# Two commands: `make run` and `make test`. Both create the virtualenv on first use.
VENV ?= .venv
PYTHON ?= python3

.PHONY: run test bench venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

run: venv
	VENV=$(VENV) scripts/run.sh

test: venv
	VENV=$(VENV) scripts/test.sh $(ARGS)

# Stock DatabaseScheduler vs the fleet scheduler; `make bench ARGS="--n 100000"` for other sizes.
bench: venv
	. scripts/services.sh && ensure_postgres && ensure_redis && \
	  CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/13} $(VENV)/bin/python bench/beat_bench.py $(ARGS)

clean:
	rm -rf $(VENV) var staticfiles test-output
