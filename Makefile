# alexlab: `make help` lists the targets. Every target installs what it needs first.
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test lint format train bench-loader data-beton

help: ## list the targets (cost on 2 CPU cores in brackets)
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-22s %s\n", $$1, $$2}'

install: $(STAMP) ## .venv with the project and FFCV, Fashion-MNIST, the image samples [~4 min, once]

# Fashion-MNIST (real, offline); libjpeg-turbo and OpenCV, which FFCV's extension builds against.
APT_PACKAGES := dataset-fashion-mnist libturbojpeg0-dev libopencv-dev pkg-config

$(STAMP): pyproject.toml
	@dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); }
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip setuptools==84.2.1 wheel
	$(VENV)/bin/pip install -q torch==2.14.1 torchvision==0.29.1
	@# FFCV's sdist uses setuptools' distutils: build it with the setuptools pinned above.
	$(VENV)/bin/pip install -q --no-build-isolation ffcv==1.0.2
	$(VENV)/bin/pip install -q -e '.[dev,ffcv]'
	@# Real CIFAR-10 and ImageNet samples for the tests; foolbox itself is never imported.
	$(VENV)/bin/pip install -q --no-deps foolbox==3.3.4
	touch $@

test: $(STAMP) ## run the test suite [~5 min]
	$(PYTHON) -m pytest -q

lint: $(STAMP) ## ruff check and format check
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: $(STAMP) ## ruff fix and format
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

train: $(STAMP) ## the main job: alexnet_small, paper switches, real Fashion-MNIST; ARGS="key=value ..." [~5 min]
	$(PYTHON) src/train.py experiment=fashion_mnist $(ARGS)

data-beton: $(STAMP) ## an ImageNet split as an FFCV .beton: SRC=ROOT/train OUT=FILE [~140 images/s on 2 cores]
	$(PYTHON) -m alexlab.data.write_beton --src $(SRC) --out $(OUT) $(ARGS)

bench-loader: $(STAMP) ## images/s: FFCV vs torchvision vs the raw JPEG decode limit, with ratios [~4 min]
	$(PYTHON) benchmarks/loader.py $(ARGS)
