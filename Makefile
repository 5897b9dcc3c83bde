# mmioscan: two commands do all the set-up on a fresh machine (see README.md).
#   make demo   install, fetch Debian's linux-source-6.12 if missing, audit it under the
#               cloud-amd64 guest config: summary, strategies side by side, HTML report
#   make test   install everything the tests need, lint, run all tests
PYTHON ?= python3
OUT ?= out

.PHONY: deps demo test lint unit integration bench report clean

deps:
	PYTHON=$(PYTHON) bash .ci/install-deps

demo: deps
	@mkdir -p $(OUT)
	@tree=$$(mmioscan kernel-tree) && config=$$(mmioscan kernel-tree --config) && \
	  mmioscan scan "$$tree" --config "$$config" --format json -o $(OUT)/linux.json && \
	  mmioscan scan "$$tree" --config "$$config" --no-progress && \
	  mmioscan strategies "$$tree" --config "$$config" --platform all --no-progress && \
	  mmioscan report "$$tree" --config "$$config" --platform all --no-progress \
	    -o $(OUT)/audit.html -o $(OUT)/audit.md && \
	  echo "written: $(OUT)/linux.json (every site), $(OUT)/audit.html, $(OUT)/audit.md"

# The published audit (reports/): Debian's linux-source-6.12 under its cloud-amd64 config,
# TDX and SEV-SNP side by side (the image boots as either guest).
REPORT ?= reports/linux-6.12-cloud-amd64
report: deps
	@tree=$$(mmioscan kernel-tree) && config=$$(mmioscan kernel-tree --config) && \
	  mmioscan report "$$tree" --config "$$config" --platform all --no-progress \
	    -o $(REPORT).md -o $(REPORT).summary.json -o $(REPORT).html && \
	  ls -l $(REPORT).*

lint:
	$(PYTHON) -m ruff check mmioscan tests bench
	$(PYTHON) -m mypy

test: deps lint
	$(PYTHON) -m pytest -q

unit:
	$(PYTHON) -m pytest -q tests/unit

integration:
	$(PYTHON) -m pytest -q tests/integration

bench: deps
	$(PYTHON) bench/run_bench.py

clean:
	rm -rf $(OUT) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
