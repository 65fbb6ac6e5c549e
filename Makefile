# wideep.gb200: developer and CI entry points.  `make test` is what CI runs
# (.ci/run).  Every target fails loudly: recipes run under bash -euo pipefail.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
# Phases of `test` share .venv and build/; never run them concurrently.
.NOTPARALLEL:
MAKEFLAGS += --no-builtin-rules

NAMESPACE ?= wideep
NAME ?= gb200
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
BUILD := $(CURDIR)/build
COLLECTIONS := $(BUILD)/collections
# This checkout as ansible_collections.<ns>.<name>, for pytest (pyproject's
# pythonpath) and anything else that imports the collection's Python.
PYPATH_LINK := $(BUILD)/pythonpath/ansible_collections/$(NAMESPACE)/$(NAME)

export PATH := $(BIN):$(PATH)
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
ifdef CI
export ANSIBLE_NOCOLOR := 1
export PY_COLORS := 0
endif

# Extra arguments for pytest in `make unit`, e.g. PYTEST_ARGS='-k plan -x'.
PYTEST_ARGS ?=
# Extra phases run at the end of `make test`, in order (space-separated target
# names; empty by default). Read when `test` runs, so `TEST_EXTRA += x` in the
# section at the end of this file works, as does `make test TEST_EXTRA=x`.
TEST_EXTRA ?=

.PHONY: help venv lint sanity unit build test clean pythonpath

help: ## List targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

venv: ## Create/update .venv from requirements*.txt (no-op when unchanged)
	scripts/venv.sh

lint: venv ## ansible-lint (production) + ruff + mypy --strict
	scripts/lint.sh

sanity: venv ## ansible-test sanity --local --python 3.11 on a clean copy
	scripts/sanity.sh

pythonpath:
	@mkdir -p "$(dir $(PYPATH_LINK))"
	@ln -sfn "$(CURDIR)" "$(PYPATH_LINK)"

# Directories given explicitly: with none of pyproject's testpaths present,
# pytest would otherwise fall back to collecting the whole tree.
UNIT_DIRS := tests/unit tests/golden

unit: venv pythonpath ## pytest tests/unit tests/golden (no tests collected = failure)
	@dirs="$(wildcard $(UNIT_DIRS))"; \
	if [[ -z "$$dirs" ]]; then \
		echo "make unit: FAILED: none of $(UNIT_DIRS) exists" >&2; exit 1; \
	fi; \
	rc=0; "$(BIN)/pytest" -m "not cluster" $(PYTEST_ARGS) $$dirs || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then \
		echo "make unit: FAILED: pytest collected no tests (exit 5)" >&2; exit 1; \
	fi; \
	exit $$rc

build: venv ## Build the collection tarball, install it into build/collections, syntax-check
	rm -rf "$(COLLECTIONS)" "$(BUILD)"/$(NAMESPACE)-$(NAME)-*.tar.gz
	mkdir -p "$(BUILD)"
	ansible-galaxy collection build --force --output-path "$(BUILD)" .
	@tarball="$$(ls "$(BUILD)"/$(NAMESPACE)-$(NAME)-*.tar.gz)"; \
	bad="$$(tar -tzf "$$tarball" | sed 's#/$$##' | git check-ignore --stdin | head -20 || true)"; \
	if [[ -n "$$bad" ]]; then \
		echo "make build: FAILED: $$tarball ships git-ignored files (caches, venv, build output);" \
			"add them to build_ignore in galaxy.yml:" >&2; \
		echo "$$bad" >&2; exit 1; \
	fi; \
	if tar -tzf "$$tarball" | grep -qE '^(python|ee)(/|$$)|^execution-environment\.yml$$'; then \
		echo "make build: FAILED: $$tarball ships python/ (the wideep-gb200 pip package) or the EE definition;" \
			"keep them in build_ignore in galaxy.yml" >&2; exit 1; \
	fi; \
	echo "make build: $$tarball ($$(du -h "$$tarball" | cut -f1))"; \
	ANSIBLE_COLLECTIONS_PATH="$(COLLECTIONS)" \
		ansible-galaxy collection install --offline --force -p "$(COLLECTIONS)" "$$tarball"
	@if [[ -f playbooks/render.yml ]]; then \
		echo "make build: ansible-playbook $(NAMESPACE).$(NAME).render --syntax-check (from build/collections)"; \
		ANSIBLE_COLLECTIONS_PATH="$(COLLECTIONS)" ANSIBLE_LOCALHOST_WARNING=false \
		ANSIBLE_INVENTORY_UNPARSED_WARNING=false \
			ansible-playbook $(NAMESPACE).$(NAME).render --syntax-check; \
	else \
		echo "make build: playbooks/render.yml absent; syntax check skipped"; \
	fi

# Phases run one after another as sub-makes, each timed; the first failure
# stops the run and is named.
TEST_PHASES = venv lint sanity unit build $(TEST_EXTRA)

test: ## Everything CI runs: venv lint sanity unit build (+ TEST_EXTRA)
	@summary=""; t0=$$(date +%s); \
	for phase in $(TEST_PHASES); do \
		echo "::: make test: $$phase"; s=$$(date +%s); rc=0; \
		$(MAKE) --no-print-directory "$$phase" || rc=$$?; \
		line="$$(printf '%-14s %5ss  %s' "$$phase" "$$(( $$(date +%s) - s ))" "$$( [[ $$rc -eq 0 ]] && echo ok || echo FAILED)")"; \
		summary="$$summary    $$line"$$'\n'; \
		if [[ $$rc -ne 0 ]]; then \
			printf '::: make test: FAILED in phase %s\n%s' "$$phase" "$$summary" >&2; exit 1; \
		fi; \
	done; \
	printf '::: make test: all phases passed in %ss\n%s' "$$(( $$(date +%s) - t0 ))" "$$summary"

clean: ## Remove build output and caches (keeps .venv)
	rm -rf "$(BUILD)" .mypy_cache .ruff_cache .pytest_cache .hypothesis tests/output
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

.PHONY: demo demo-down render cluster-up cluster-test role-tests bench-plan bench-weights bench-warm-start contract catalogue

# The real engine parsers, then the emulated-cluster tests, then each provisioning role's
# scenario, then the fault tests (their own cluster) end `make test`.
TEST_EXTRA += contract cluster-test role-tests fault-test

# The engine contract (engines/, scripts/engines.py): every recipe parsed by the real SGLang and
# Dynamo parsers of the versions it pins, and the committed catalogue compared with what the
# released packages give. One venv per (Dynamo, SGLang) pair, built once per machine under
# ~/.cache/wideep-gb200/engines (WIDEEP_ENGINE_CACHE), plus a shared torch base (~6 GB in all).
contract: venv pythonpath ## Real SGLang/Dynamo parsers on every recipe (tests/contract; venvs cached per machine)
	python scripts/engines.py venv
	@rc=0; "$(BIN)/pytest" -m contract --durations=5 $(PYTEST_ARGS) tests/contract || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "make contract: FAILED: pytest collected no tests (exit 5)" >&2; exit 1; fi; \
	exit $$rc

catalogue: venv ## Regenerate engines/catalogue/*.json from the released SGLang/Dynamo packages
	python scripts/engines.py catalogue

# The emulated GB200 cluster (emulated/cluster.py): Docker-in-Docker trays on a Docker
# network the project creates. Topology: make demo PREFILL_NODES=2 DECODE_NODES=2 ...
CLUSTER := python3 emulated/cluster.py
CLUSTER_TOPOLOGY ?= --prefill-workers $(or $(PREFILL_WORKERS),1) --prefill-nodes $(or $(PREFILL_NODES),2) \
	--decode-workers $(or $(DECODE_WORKERS),1) --decode-nodes $(or $(DECODE_NODES),2)
EMU_INVENTORY := -i $(BUILD)/emulated/hosts.yml -i inventories/emulated
PLAYBOOK := ANSIBLE_COLLECTIONS_PATH="$(BUILD)/pythonpath" ANSIBLE_FORCE_COLOR=$(if $(CI),0,1) ansible-playbook

cluster-up: venv pythonpath ## Install the Docker engine if missing, build the images, start the emulated trays
	$(CLUSTER) install-engine
	$(CLUSTER) up $(CLUSTER_TOPOLOGY)

demo: cluster-up ## Main job: emulated GB200 cluster serving DeepSeek-R1 (mocker) through the real Dynamo frontend
	$(PLAYBOOK) wideep.gb200.site $(EMU_INVENTORY)
	@python3 emulated/demo_request.py "$(BUILD)/emulated/hosts.yml"

cluster-test: venv pythonpath ## Molecule scenario `cluster`: converge, idempotence, testinfra verify on the emulated trays
	$(CLUSTER) install-engine
	ANSIBLE_COLLECTIONS_PATH="$(BUILD)/pythonpath" molecule test -s cluster

# One molecule scenario per provisioning role (molecule/<role>: a Debian 12 container; check,
# converge, idempotence, verify). gdrcopy's needs NVIDIA's release tarball, which cannot be
# downloaded here (GitHub) and is not committed (upstream code): without it the scenario is
# reported SKIPPED, by name; with it, it runs like the others.
ROLE_SCENARIOS := rdma host_limits gpu_driver container_runtime imex preflight gdrcopy
GDRCOPY_TARBALL := molecule/gdrcopy/files/gdrcopy-2.5.1.tar.gz

role-tests: venv pythonpath ## Molecule scenario of every provisioning role and preflight (molecule/<role>)
	$(CLUSTER) install-engine
	$(CLUSTER) images
	@set -e; summary=""; for scenario in $(ROLE_SCENARIOS); do \
		if [[ $$scenario == gdrcopy && ! -f $(GDRCOPY_TARBALL) ]]; then \
			summary="$$summary    gdrcopy           SKIPPED: $(GDRCOPY_TARBALL) absent (NVIDIA's release; GitHub is unreachable here)"$$'\n'; \
			continue; \
		fi; \
		echo "::: role-tests: molecule test -s $$scenario"; s=$$(date +%s); \
		ANSIBLE_COLLECTIONS_PATH="$(BUILD)/pythonpath" molecule test -s $$scenario; \
		summary="$$summary    $$(printf '%-17s %4ss ok' $$scenario $$(( $$(date +%s) - s )))"$$'\n'; \
	done; printf '::: role-tests\n%s' "$$summary"

# Faults survived (README, Faults): a cluster of its own (two decode workers of two trays, one
# prefill tray, the head), named and addressed apart from the `cluster` scenario's default one, so
# both can be up at once. tests/faults kills a decode rank and restarts etcd and NATS under load;
# build/bench/faults.json and a table. FAULT_KEEP=1 leaves the cluster up afterwards.
FAULT_EMU_NAME ?= wideep-fault
FAULT_EMU_SUBNET ?= 172.31.239.0/24
FAULT_TOPOLOGY := --prefill-workers 1 --prefill-nodes 1 --decode-workers 2 --decode-nodes 2
# Playbooks that bring the bare trays to serving. Not provision: the emulated trays need none of it
# to serve (its roles are cluster-test's and role-tests' subject), and it is most of site's time
# here. FAULT_CONVERGE=site for the whole of it.
FAULT_CONVERGE ?= stage serve

.PHONY: fault-test
fault-test: venv pythonpath ## Fault tests on a 6-tray cluster of their own: kill a decode rank, restart etcd/NATS, under load (build/bench/faults.json)
	$(CLUSTER) install-engine
	export WIDEEP_EMU_NAME="$(FAULT_EMU_NAME)" WIDEEP_EMU_SUBNET="$(FAULT_EMU_SUBNET)"; \
	rc=0; { $(CLUSTER) up $(FAULT_TOPOLOGY) && \
		( for playbook in $(FAULT_CONVERGE); do $(PLAYBOOK) wideep.gb200.$$playbook $(EMU_INVENTORY) || exit 1; done ) && \
		"$(BIN)/pytest" -s --durations=10 $(PYTEST_ARGS) tests/faults; } || rc=$$?; \
	if [[ -z "$(FAULT_KEEP)" ]]; then $(CLUSTER) down; fi; \
	if [[ $$rc -eq 5 ]]; then echo "make fault-test: FAILED: pytest collected no tests (exit 5)" >&2; exit 1; fi; \
	exit $$rc

demo-down: ## Remove the emulated cluster (trays, their volumes, the network)
	$(CLUSTER) down

render: venv pythonpath ## Render the seeds' deployment (inventories/gb200) and show each tray's command
	$(PLAYBOOK) wideep.gb200.render -i inventories/gb200 -e gb200_render_dir="$(BUILD)/render"
	@for script in "$(BUILD)"/render/hosts/*.sh; do echo; echo "===== $$script"; cat "$$script"; done
	@echo; echo "plan: $(BUILD)/render/plan.json"

bench-plan: venv pythonpath ## Plan and render time for 72- and 500-tray inventories (build/bench/plan.json)
	ANSIBLE_COLLECTIONS_PATH="$(BUILD)/pythonpath" python benchmarks/plan_bench.py

bench-weights: venv pythonpath ## Chain broadcast vs naive, N=4 and 8, tc-shaped links (build/bench/weights.json; ~10 min)
	python benchmarks/weights_bench.py

bench-warm-start: cluster-up ## Cold vs warm bring-up to the smoke gate, compiles per tray (build/bench/warm_start.json; ~10 min)
	python benchmarks/warm_start_bench.py

.PHONY: bench-rack
# An NVL72 rack on the emulated cluster: 18 trays (head + 2 prefill workers x 4 trays + 3 decode
# workers x 3 trays), under its own name and subnet unless WIDEEP_EMU_NAME/SUBNET say otherwise.
# RACK_ARGS: --keep (use the running cluster) or --noop-only.
RACK_ARGS ?=
bench-rack: venv pythonpath ## 18-tray rack: site from bare, then a no-op site; seconds, changed per host, slowest tasks (build/bench/rack.json; ~20 min)
	$(CLUSTER) install-engine
	ANSIBLE_COLLECTIONS_PATH="$(BUILD)/pythonpath" WIDEEP_EMU_NAME="$${WIDEEP_EMU_NAME:-wideep-rack}" \
		WIDEEP_EMU_SUBNET="$${WIDEEP_EMU_SUBNET:-172.31.243.0/24}" python benchmarks/rack_bench.py $(RACK_ARGS)

.PHONY: bench-task-cost
# What one task costs the controller (a play of skipped tasks, one of `command: true`, one empty) on
# the running emulated cluster's trays: the floor under a rack's no-op run (docs/rack.md).
bench-task-cost: venv pythonpath ## Controller CPU per task and host, skipped or running a module, on the running emulated cluster (build/bench/task_cost.json; ~1-2 min)
	python benchmarks/task_cost.py

.PHONY: bench-relay
bench-relay: venv pythonpath ## The relay's ceiling, no shaping: hop and chains of 2/4, lanes 1/2/4, vs sha256/socket/disk ceilings (build/bench/relay.json; ~5 min)
	python benchmarks/relay_bench.py

# ---- Benchmark (issue 11): aiperf against the deployed frontend, from the controller. aiperf 0.13.0
# lives in a venv of its own (scripts/aiperf_venv.sh, cached per machine; it conflicts with .venv).
# On the emulated cluster the engine is Dynamo's mocker: figures measure the plumbing, not GB200.
.PHONY: bench-serving bench-compare
BENCH_SERVING_DIR ?= $(BUILD)/bench/serving
# Extra ansible-playbook arguments, e.g. BENCH_ARGS='-e {"bench_sweep":{"preset":"1k1k"}}'.
BENCH_ARGS ?=

bench-serving: cluster-up ## Emulated cluster: converge, then wideep.gb200.bench (aiperf sweep) into build/bench/serving
	$(PLAYBOOK) wideep.gb200.site $(EMU_INVENTORY)
	aiperf="$$(scripts/aiperf_venv.sh)"; \
	$(PLAYBOOK) wideep.gb200.bench $(EMU_INVENTORY) -e bench_aiperf="$$aiperf" -e bench_dir="$(BENCH_SERVING_DIR)" $(BENCH_ARGS)

bench-compare: ## Two result sets on the same axes: make bench-compare A=DIR B=DIR [OUT=DIR] (default build/bench/compare)
	@[[ -n "$(A)" && -n "$(B)" ]] || { echo "make bench-compare: give A=<results dir> B=<results dir>" >&2; exit 1; }
	aiperf="$$(scripts/aiperf_venv.sh)"; \
	"$$(dirname "$$aiperf")/python" plugins/plugin_utils/bench/plots.py compare "$(A)" "$(B)" "$(or $(OUT),$(BUILD)/bench/compare)"

# ---- wideep_gb200 package and execution environment (issue 13) --------------------------------
.PHONY: ee

EE_VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
EE_IMAGE ?= wideep-gb200-ee:$(EE_VERSION)
EE_BASE := $(shell sed -n 's/^    name: *//p' execution-environment.yml)

# The execution environment (execution-environment.yml, ansible-builder 3) FROM the project's own
# Debian 12 base image, with wheels built here (pip inside a container does not trust the TLS proxy)
# and the collection tarball of `make build`; then the render playbook runs inside it (as AWX runs
# it: non-root, no network) and must write the plan this checkout computes. Not part of `make
# test`: a cold build takes minutes (README, Execution environment).
ee: build ## Build the execution environment image and run the render playbook inside it
	$(CLUSTER) install-engine
	@# Only the base image is needed; `images` builds it (and the others) when it is missing.
	docker image inspect $(EE_BASE) >/dev/null 2>&1 || $(CLUSTER) images
	rm -rf "$(BUILD)/ee" && mkdir -p "$(BUILD)/ee/wheels" "$(BUILD)/ee/collection" "$(BUILD)/ee/check"
	cp "$(BUILD)"/$(NAMESPACE)-$(NAME)-$(EE_VERSION).tar.gz "$(BUILD)/ee/collection/wideep-gb200.tar.gz"
	python -m pip wheel --quiet --disable-pip-version-check -w "$(BUILD)/ee/wheels" \
		-r ee/requirements.txt -r requirements.txt bindep packaging PyYAML wheel setuptools dumb-init==1.2.5
	ansible-builder build -f execution-environment.yml -c "$(BUILD)/ee/context" -t "$(EE_IMAGE)" \
		--container-runtime docker -v 2
	docker run --rm --network none -v "$(CURDIR)/inventories/gb200:/runner/inventory:ro" "$(EE_IMAGE)" \
		bash -c 'ansible-galaxy collection list wideep.gb200 >&2 && ansible-playbook wideep.gb200.render -i /runner/inventory \
		-e gb200_render_dir=/tmp/render >&2 && cat /tmp/render/plan.json' > "$(BUILD)/ee/check/plan.json"
	wideep plan -i inventories/gb200 --json > "$(BUILD)/ee/check/host.json"
	python scripts/ee_check.py "$(BUILD)/ee/check/plan.json" "$(BUILD)/ee/check/host.json" "$(EE_IMAGE)"
