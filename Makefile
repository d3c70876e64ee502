# Quick start: `make demo` runs the demo, `make test` runs the tests. Both create .venv with the
# project installed (console script .venv/bin/sweep) on a machine with only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
# The versions tested: `make` installs within them, `make lock` renews them from pyproject.toml.
LOCK := requirements.lock

.PHONY: venv demo test lint lock clean

venv: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c $(LOCK) -e '.[test]'
	touch $(STAMP)

lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[test]'
	.lock-venv/bin/python -m pip freeze --exclude-editable > $(LOCK)
	rm -rf .lock-venv

demo: $(STAMP)
	$(VENV)/bin/sweep explain --model llama-3.3-70b --gpu h100-sxm --tp 4 --batch 1 --input 2048 --output 300 --convention article
	$(VENV)/bin/sweep run article-70b -o outputs/article-70b.zarr --overwrite
	$(VENV)/bin/sweep report outputs/article-70b.zarr -o outputs/article-70b-report.html
	$(VENV)/bin/sweep show outputs/article-70b.zarr
	$(VENV)/bin/sweep query outputs/article-70b.zarr --sel profile=vllm-h100 --sel input_len=2048 --sel output_len=300 \
	    --where 'user_tok_s>=30' --where 'ttft_s<=1' --best usd_per_mtok_output --over tp,batch

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint
	bash scripts/ensure-chromium.sh
	$(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) outputs/*.zarr outputs/*.html outputs/*.png
