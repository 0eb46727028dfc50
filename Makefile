# alexlab: `make help` lists the targets. Every target installs what it needs first.
SHELL := /bin/bash
VENV := .venv
# Python runs on tcmalloc (Debian libtcmalloc-minimal4) where it is installed: glibc's malloc hands
# each large, short-lived tensor back to the kernel and faults it in again on the next step, which
# made AlexNet's CPU training step 39% slower (89 vs 145 images/s; make bench-train prints the malloc).
TCMALLOC = $$(ls /usr/lib/*/libtcmalloc_minimal.so.4 2>/dev/null | head -n 1)
PYTHON := LD_PRELOAD=$(TCMALLOC) $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test test-cluster test-experiments test-fast lint format train bench-loader bench-train bench-checkpoint data-beton sweep agent \
	reproduce reproduce-relu-speedup reproduce-ablations reproduce-lrn-cifar reproduce-table1 evaluate-table1 claims \
	more-seeds

help: ## list the targets (cost on 2 CPU cores in brackets)
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-22s %s\n", $$1, $$2}'

install: $(STAMP) ## .venv with the project and FFCV, Fashion-MNIST, the image samples [~4 min, once]

# Fashion-MNIST (real, offline); libjpeg-turbo and OpenCV, which FFCV's extension builds against;
# g++, which builds FFCV's and ours (the fused LRN kernel, setup.py); tcmalloc (see PYTHON).
APT_PACKAGES := dataset-fashion-mnist libturbojpeg0-dev libopencv-dev pkg-config g++ \
	libtcmalloc-minimal4
# For the tests alone: SLURM with its accounting (munge, slurmdbd, MariaDB), for the cluster of one
# node that tests/slurm_cluster.py starts and stops (Debian starts none of these daemons itself
# where policy-rc.d forbids it, as in containers; elsewhere it starts them as services).
TEST_APT_PACKAGES := slurmctld slurmd slurm-client slurmdbd munge mariadb-server
TEST_STAMP := $(VENV)/.test-installed

$(STAMP): pyproject.toml setup.py src/alexlab/kernels/lrn_cpu.cpp
	@dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); }
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip setuptools==84.2.1 wheel
	$(VENV)/bin/pip install -q torch==2.14.1 torchvision==0.29.1
	@# FFCV's sdist uses setuptools' distutils, and our C++ LRN kernel builds against the torch
	@# installed above: no build isolation, the setuptools pinned above.
	$(VENV)/bin/pip install -q --no-build-isolation -e '.[dev,ffcv]'
	@# Real CIFAR-10 and ImageNet samples for the tests; foolbox itself is never imported.
	$(VENV)/bin/pip install -q --no-deps foolbox==3.3.4
	touch $@

# Two pytest workers (pytest-xdist) handed tests one at a time, which keeps both busy to the end
# (whole files at a time left one worker alone on the last file for two minutes); the costliest
# module fixture, test_eval's three nets, is trained once and shared through a file lock. One
# thread each (and each run they start): two workers of two threads on two cores took 12 min 31 s
# against 8 min 59 s, the time lost to threads waiting on each other.
TEST = OMP_NUM_THREADS=1 $(PYTHON) -m pytest -q -n 2 --dist load
$(TEST_STAMP): $(STAMP)
	@dpkg -s $(TEST_APT_PACKAGES) >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_APT_PACKAGES); }
	touch $@

test: $(STAMP) ## run the test suite, every tier but the SLURM cluster's and the experiments' [8.5-12 min]
	$(TEST) -m "not cluster and not experiments"

test-experiments: $(STAMP) ## every experiment's and group option's whole life (train, test, resume, eval) and every reproduce-*/evaluate-* recipe in its smoke mode, at toy size [~5 min]
	$(TEST) -m experiments

test-cluster: $(TEST_STAMP) ## the tests on a real SLURM cluster of one node that they start (docs/cluster.md) [~2 min]
	$(TEST) -m cluster

test-fast: $(STAMP) ## the inner loop: the tests that neither train nor start a process (not marked slow) [~1 min]
	$(TEST) -m "not slow"

lint: $(STAMP) ## ruff check and format check
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: $(STAMP) ## ruff fix and format
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

train: $(STAMP) ## the main job: alexnet_small, the source's defaults, real Fashion-MNIST; ARGS="key=value ..." [~3 min]
	$(PYTHON) src/train.py experiment=fashion_mnist $(ARGS)

# ImageNet as experiment=imagenet reads it (data=imagenet_ffcv's default paths): ILSVRC's train/ and
# val/ (the test set) as .betons, written once; the writer refuses to overwrite one.
IMAGENET ?= /data/imagenet
BETONS := data/imagenet_train.beton data/imagenet_val.beton
data/imagenet_%.beton: | $(STAMP)
	$(PYTHON) -m alexlab.data.write_beton --src $(IMAGENET)/$* --out $@ $(ARGS)

data-beton: $(BETONS) ## ImageNet as FFCV .betons for experiment=imagenet: IMAGENET=ROOT (train/, val/) -> data/imagenet_{train,val}.beton [~140 images/s on 2 cores]

# The benchmarks take ARGS; ARGS=--smoke runs every part at toy sizes in seconds (the tests do),
# a check that it runs: its numbers mean nothing.
bench-train: $(STAMP) ## images/s of a training step: our AlexNet vs torchvision's (a/b), convnet4; fp32/bf16, channels-last, compile; profile rows; fused vs pure-torch LRN; epoch overheads; time to target [~5 min; ARGS=--smoke ~25 s]
	$(PYTHON) benchmarks/train_step.py $(ARGS)

bench-loader: $(STAMP) ## images/s: FFCV vs torchvision vs the raw JPEG decode limit, with ratios [~4 min; ARGS=--smoke ~15 s]
	$(PYTHON) benchmarks/loader.py $(ARGS)

bench-checkpoint: $(STAMP) ## the main job with and without last.ckpt (each epoch, every N steps): time ratios, ms a checkpoint [~2 min; ARGS=--smoke ~10 s]
	$(PYTHON) benchmarks/checkpoint.py $(ARGS)

sweep: $(STAMP) ## any sweep file, no wandb server: FILE=sweeps/X.yaml ARGS="--set KEY=VALUE --parallel 2"
	$(PYTHON) -m alexlab.sweep $(FILE) $(ARGS)

# wandb's agent runs a sweep file's command with ${interpreter} the first `python` on the PATH and
# `program: src/train.py` relative to where it starts: run from the repository (make -C DIR agent
# from anywhere) with the venv first on the PATH, its runs find both, with or without an
# activated venv. They go to logs/train/wandb_sweeps/ID/ and into the sweep on wandb's server (the
# reports read them there: python -m alexlab.report ... --wandb). ARGS="--count N" caps the runs.
WANDB = $(VENV)/bin/wandb
agent: $(STAMP) ## a wandb agent of a sweep on wandb's server, on this machine: SWEEP_ID=ENTITY/alexlab/ID, as wandb sweep sweeps/X.yaml prints it [each run's time]
	@test -n "$(SWEEP_ID)" || { echo "error: make agent needs SWEEP_ID=ENTITY/PROJECT/ID, as \
	'wandb sweep sweeps/FILE.yaml' prints it" >&2; exit 2; }
	LD_PRELOAD=$(TCMALLOC) PATH="$(abspath $(VENV))/bin:$$PATH" $(WANDB) agent $(ARGS) $(SWEEP_ID)

# The paper's experiments, one study file each (studies/*.yaml, its `run` section; docs/studies.md):
# python -m alexlab.reproduce runs a study's sweeps with no wandb server (the same command resumes
# a sweep cut short and skips finished runs; each prints its runs and their time before it starts),
# its evaluation and its reports: results/NAME-DATA.md and .png, the table printed. DATA picks the
# dataset; EPOCHS, SUBSET (training images), SEEDS=[0,1] (the seeds measured) and PARALLEL scale it
# down for a CPU; ARGS=--dry-run prints the commands. A sweep directory keeps its settings (a
# widened grid is fine): after changing them, remove results/sweeps/NAME-DATA. STUDIES=DIR adds a
# folder of study files of your own. SMOKE=1 checks a recipe end to end in minutes on any
# machine, its reports included, under logs/smoke/ (their numbers mean nothing).
DATA ?= fashion_mnist
PARALLEL ?= 1
RESULTS = $(if $(SMOKE),logs/smoke/results,results)
SWEEPS_DIR = $(RESULTS)/sweeps
SWEEP = $(PYTHON) -m alexlab.sweep --parallel $(PARALLEL)
REPORT = $(PYTHON) -m alexlab.report
STUDIES_ARGS = $(foreach dir,$(STUDIES),--studies $(dir))
REPRODUCE = $(PYTHON) -m alexlab.reproduce --data $(DATA) --results $(RESULTS) --parallel $(PARALLEL) \
	$(if $(EPOCHS),--set trainer.max_epochs=$(EPOCHS)) $(if $(SUBSET),--set data.subset=$(SUBSET)) \
	$(if $(SEEDS),--seeds $(SEEDS)) $(if $(SMOKE),--smoke) $(if $(ONLY),--only $(ONLY)) $(STUDIES_ARGS)
STUDY_NAMES = $$(cd studies && ls *.yaml | sed 's/\.yaml$$//' | paste -sd' ')
reproduce: $(STAMP) $(if $(filter imagenet,$(DATA)),$(BETONS)) ## any studies of studies/: STUDY="NAME ..." DATA=fashion_mnist|cifar10|imagenet; sweeps, evaluation, reports -> results/ [ARGS=--dry-run lists the commands]
	@test -n "$(STUDY)" || { echo "error: make reproduce needs STUDY=NAME; the studies: $(STUDY_NAMES)" >&2; exit 2; }
	$(REPRODUCE) $(STUDY) $(ARGS)

REPRODUCE_STUDY = $(MAKE) --no-print-directory reproduce
reproduce-relu-speedup: ## Figure 1: lr grids on seeds 0-2, the chosen lr on seeds 3-7, original and modern conditions; DATA=fashion_mnist|cifar10 [~2 h on fashion_mnist]
	$(REPRODUCE_STUDY) STUDY="relu_speedup relu_speedup_modern"

reproduce-ablations: ## the paper's ablations (conf/ablation/), 3 seeds each (5 fresh ones for LRN's and the overfitting claims', run apart), and the baseline's ensemble; DATA=fashion_mnist|cifar10|imagenet IMAGENET=DIR [~130 min on fashion_mnist with PARALLEL=2; SEEDS=[0] ~40 min]
	$(REPRODUCE_STUDY) STUDY="ablations ablations_lrn ablations_overfitting"

reproduce-lrn-cifar: ## CIFAR-10 LRN claim, conv_local (cuda-convnet's conv-local nets) LRN off/code x 3 seeds, 100 epochs; DATA=cifar10|fashion_mnist [~12 h on fashion_mnist; EPOCHS=4 SEEDS=[0,1] ~19 min]
	$(REPRODUCE_STUDY) STUDY=lrn_cifar

reproduce-table1: ## Table 1's CNN on ImageNet through FFCV, 5 seeds, then their 10-patch test errors one by one and averaged (Table 2's 5-CNN row); IMAGENET=DIR (for make data-beton), a GPU [~days per run]
	$(REPRODUCE_STUDY) STUDY=table1 DATA=imagenet

evaluate-table1: ## the evaluation and reports of reproduce-table1 alone, on its runs however made [~minutes on a GPU]
	$(REPRODUCE_STUDY) STUDY=table1 DATA=imagenet ONLY=evaluate

BUDGET ?= 60
more-seeds: $(STAMP) ## plan a confirmation on fresh seeds for the inconclusive ablation rows that 12 seeds or fewer could decide, within BUDGET minutes of machine time [BUDGET=60] -> results/more_seeds.md: write its seeds into the claims (studies/), then run its sweeps
	$(REPORT) more-seeds $(SWEEPS_DIR) --budget $(BUDGET) --out $(RESULTS)/more_seeds

claims: $(STAMP) ## every claim of the paper with its verdict, from the runs in results/sweeps -> results/claims.md and .json; every sweep's table -> results/all_sweeps.md [~15 s]
	$(REPORT) claims $(SWEEPS_DIR) $(STUDIES_ARGS) --out $(RESULTS)/claims
	$(REPORT) sweeps $(SWEEPS_DIR) --out $(RESULTS)/all_sweeps
