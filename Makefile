# Two commands: `make run` and `make test`. Both create the virtualenv on first use.
VENV ?= .venv
PYTHON ?= python3

.PHONY: run test venv clean

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

clean:
	rm -rf $(VENV) var staticfiles test-output
