# callfunnel — two commands do all set-up on a fresh machine:
#   make demo   the offline demo call (fetches the models on first run)
#   make test   every test (installs what the tests need first)

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/callfunnel-target
RELEASE_BIN := $(CARGO_TARGET_DIR)/release/callfunnel
DEBUG_BIN := $(CARGO_TARGET_DIR)/debug/callfunnel

.PHONY: demo demo-cloud test setup build models serve bench clean-cache services services-down

services:
	scripts/services.sh up

services-down:
	scripts/services.sh down

setup:
	@scripts/setup-system.sh

build: setup
	cargo build --release --locked --bin callfunnel

demo: build
	$(RELEASE_BIN) models fetch
	$(RELEASE_BIN) demo

demo-cloud: build
	$(RELEASE_BIN) models fetch
	$(RELEASE_BIN) demo --providers cloud

serve: build
	$(RELEASE_BIN) models fetch
	$(RELEASE_BIN) serve

models: build
	$(RELEASE_BIN) models fetch

test: setup
	scripts/sdk-venv.sh
	scripts/services.sh up
	scripts/check-deploy.sh
	scripts/console-deps.sh
	cargo build --workspace --locked --tests --bins
	$(DEBUG_BIN) models fetch
	cargo test --workspace --locked

bench: build
	$(RELEASE_BIN) models fetch
	cargo bench --workspace --locked

clean-cache:
	rm -rf $(CARGO_TARGET_DIR)
