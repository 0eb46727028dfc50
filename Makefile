# alexlab: `make help` lists the targets. Every target installs what it needs first.
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test lint format train

help: ## list the targets (cost on 2 CPU cores in brackets)
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-22s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv with the project, Fashion-MNIST and the image samples [~3 min, once]

$(STAMP): pyproject.toml
	@if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; fi
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q torch==2.14.1 torchvision==0.29.1 -e '.[dev]'
	@# Real CIFAR-10 and ImageNet samples for the tests; foolbox itself is never imported.
	$(VENV)/bin/pip install -q --no-deps foolbox==3.3.4
	touch $@

test: $(STAMP) ## run the test suite [~8 min]
	$(PYTHON) -m pytest -q

lint: $(STAMP) ## ruff check and format check
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests

format: $(STAMP) ## ruff fix and format
	$(VENV)/bin/ruff check --fix src tests
	$(VENV)/bin/ruff format src tests

train: $(STAMP) ## the main job: alexnet_small, paper switches, real Fashion-MNIST; ARGS="key=value ..." [~5 min]
	$(PYTHON) src/train.py experiment=fashion_mnist $(ARGS)
