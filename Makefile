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
	reproduce-relu-speedup reproduce-ablations reproduce-lrn-cifar reproduce-table1 evaluate-table1 claims \
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

# The paper's experiments: each runs its sweep file with no wandb server (the same command resumes a
# sweep cut short and skips finished runs), writes results/NAME-DATA.md and .png, prints the table.
# DATA picks the dataset; EPOCHS, SUBSET (training images), SEEDS=[0,1] and PARALLEL scale a run
# down for a CPU. A sweep directory keeps its settings (a widened grid is fine): after changing
# them, remove logs/sweeps/NAME-DATA.
DATA ?= fashion_mnist
PARALLEL ?= 1
SCALE = $(if $(EPOCHS),--set trainer.max_epochs=$(EPOCHS)) $(if $(SUBSET),--set data.subset=$(SUBSET)) \
	$(if $(SEEDS),--set seed=$(SEEDS))
SWEEP = $(PYTHON) -m alexlab.sweep --parallel $(PARALLEL)
REPORT = $(PYTHON) -m alexlab.report
# SMOKE=1 checks a recipe end to end in minutes on any machine, its reports included (their numbers
# mean nothing): each run is conf/debug/smoke.yaml's few batches of one epoch, reaching its target
# error (train.target_error=0.999) at its first check, so that the reports that time it have a
# number; a sweep runs one seed and starts at most two runs (Figure 1's grids: the first rate on
# its three selection seeds, which a grid lists first; its measured sweeps: one seed); src/eval.py
# scores a few batches. Last on each sweep's line: it wins over the recipe's own settings, as those
# win over debug=smoke's.
SMOKE_RUNS = --set debug=smoke --set trainer.max_epochs=1 --set trainer.check_val_every_n_epoch=1 \
	--set train.target_error=0.999 --no-estimate
SMOKE_SWEEP = $(if $(SMOKE),$(SMOKE_RUNS) --set seed=[0] --count 2)
SMOKE_EVAL = $(if $(SMOKE),debug=smoke)
# The runs and reports: results/ (committed evidence), or under logs/smoke/ with SMOKE=1.
RESULTS = $(if $(SMOKE),logs/smoke/results,results)
SWEEPS_DIR = $(RESULTS)/sweeps
# Figure 1 as a reviewer measures it: on seeds 0-2, a grid of learning rates per activation (one
# sweep file each: hyperband ranks a sweep's runs together), from which the report chooses one rate per
# activation for the verdict's target (the paper's 25% on CIFAR-10; on Fashion-MNIST an error as
# hard to reach, 18%: docs/reproducing.md "Figure 1 on Fashion-MNIST"); then that rate alone on seeds 3-7, the
# runs measured, long enough for the curve's hardest target (MEASURE_TARGET). The original
# conditions run their grids in full, which the hyperband report replays hyperband on; the modern
# ones use it. On Fashion-MNIST the grids are narrowed to 3-4 rates around each activation's
# fastest (LRS_..., what the committed runs used).
TARGET_cifar10 := 0.17
TARGET_fashion_mnist := 0.10
MEASURE_TARGET_cifar10 := 0.17
MEASURE_TARGET_fashion_mnist := 0.12
EPOCHS_fashion_mnist := 6
MEASURE_EPOCHS_fashion_mnist := 10
MEASURED_SEEDS := [3,4,5,6,7]
LRS_relu_vs_tanh_relu_fashion_mnist := [0.002,0.004,0.008,0.016]
LRS_relu_vs_tanh_tanh_fashion_mnist := [0.032,0.064,0.128,0.256]
LRS_relu_vs_tanh_modern_relu_fashion_mnist := [0.01,0.02,0.04,0.08]
LRS_relu_vs_tanh_modern_tanh_fashion_mnist := [0.04,0.08,0.16]
FULL_relu_vs_tanh := --no-early-terminate
# The ablations use the main job's recipe (alexnet_small) on small images, the paper's on ImageNet.
# On small images: 5,000 training images for 30 epochs. PCA lighting is not run on grey images
# (not testable: one channel). Two sets run apart. LRN's, with conv1 drawn from N(0, 0.2): at the
# init's 0.01, conv1's 25 inputs (the paper's has 363) leave LRN's neighbour term a thousandth of
# its normalizer, a constant factor (the LRN rows' mechanism check); at 0.2, a quarter at the start.
# The overfitting and early-learning claims', on 1,000 images for 200 epochs at a constant rate:
# in the 5,000-image runs the nets without dropout or with zero biases were still at chance when
# the plateau schedule cut their rate (the 5,000-image table keeps them), and none overfit (the
# overfitting claims' mechanism check: at least 5 points of validation over training error).
# The regime was chosen on seed 99, not on the seeds measured; dropout's cost in iterations is
# counted to 20% training error, and the biases' to 50%, both fixed before the runs.
SMALL_ABLATIONS := --set data.subset=5000 --set trainer.max_epochs=30 --set train.target_error=0.2
OVERFIT_ABLATIONS := --set data.subset=1000 --set trainer.max_epochs=200 --set optim.scheduler=null \
	--set trainer.check_val_every_n_epoch=10 --set train.target_error=0.2
ABLATION_DATA_fashion_mnist := --set experiment=fashion_mnist $(SMALL_ABLATIONS) \
	--set ablation=[baseline,plain_pooling,one_column,no_conv3,no_conv4,no_dropout,no_crops_flips,no_weight_decay,zero_biases]
ABLATION_DATA_cifar10 := --set experiment=fashion_mnist --set data=cifar10 $(SMALL_ABLATIONS)
ABLATION_DATA_imagenet :=
ABLATION_lrn_fashion_mnist := --set experiment=fashion_mnist $(SMALL_ABLATIONS) \
	--set ablation=[baseline,no_lrn] --set model.init_std.conv1=0.2 --set study.name=ablations_lrn
ABLATION_lrn_cifar10 := $(ABLATION_lrn_fashion_mnist) --set data=cifar10
ABLATION_overfitting_fashion_mnist := --set experiment=fashion_mnist $(OVERFIT_ABLATIONS) \
	--set ablation=[baseline,no_dropout,no_crops_flips,plain_pooling,zero_biases] \
	--set study.name=ablations_overfitting
ABLATION_overfitting_cifar10 := $(ABLATION_overfitting_fashion_mnist) --set data=cifar10

FIGURE1 = --set data=$(DATA) --set train.target_error=$(TARGET) \
	$(if $(EPOCHS_$(DATA)),--set trainer.max_epochs=$(EPOCHS_$(DATA))) $(SCALE)
LRS = $(LRS_$(1)_$(2)_$(DATA))
FIGURE1_GRID = $(SWEEP) sweeps/$(1)_$(2).yaml --dir $(SWEEPS_DIR)/$(1)-$(DATA)/$(2) --set seed=[0,1,2] \
	$(if $(LRS),--set optim.lr=$(LRS)) $(FULL_$(1)) $(FIGURE1) $(if $(SMOKE),$(SMOKE_RUNS) --count 3)
# The rate first, on a line of its own: a grid with none to choose stops the recipe there.
FIGURE1_MEASURE = rate=$$($(REPORT) chosen-rate $(SWEEPS_DIR)/$(1)-$(DATA)/$(2)) && \
	$(SWEEP) sweeps/$(1)_$(2).yaml --dir $(SWEEPS_DIR)/$(1)-$(DATA)/measured-$(2) \
	--set optim.lr=$$rate --set seed=$(MEASURED_SEEDS) --no-early-terminate --set data=$(DATA) \
	--set train.target_error=$(MEASURE_TARGET_$(DATA)) \
	$(if $(MEASURE_EPOCHS_$(DATA)),--set trainer.max_epochs=$(MEASURE_EPOCHS_$(DATA))) \
	$(if $(SMOKE),$(SMOKE_RUNS) --count 1)
reproduce-relu-speedup: TARGET ?= $(TARGET_$(DATA))
reproduce-relu-speedup: $(STAMP) ## Figure 1: lr grids on seeds 0-2, the chosen lr on seeds 3-7, original and modern conditions; DATA=fashion_mnist|cifar10 [~2 h on fashion_mnist]
	$(call FIGURE1_GRID,relu_vs_tanh,relu)
	$(call FIGURE1_GRID,relu_vs_tanh,tanh)
	$(call FIGURE1_GRID,relu_vs_tanh_modern,relu)
	$(call FIGURE1_GRID,relu_vs_tanh_modern,tanh)
	$(call FIGURE1_MEASURE,relu_vs_tanh,relu)
	$(call FIGURE1_MEASURE,relu_vs_tanh,tanh)
	$(call FIGURE1_MEASURE,relu_vs_tanh_modern,relu)
	$(call FIGURE1_MEASURE,relu_vs_tanh_modern,tanh)
	$(REPORT) relu-speedup original=$(SWEEPS_DIR)/relu_vs_tanh-$(DATA) \
	  modern=$(SWEEPS_DIR)/relu_vs_tanh_modern-$(DATA) --out $(RESULTS)/relu_vs_tanh-$(DATA)
	$(REPORT) hyperband $(SWEEPS_DIR)/relu_vs_tanh-$(DATA)/relu $(SWEEPS_DIR)/relu_vs_tanh-$(DATA)/tanh \
	  --sweep-file sweeps/relu_vs_tanh_relu.yaml --out $(RESULTS)/hyperband-$(DATA)

# The baseline's seeds are also Table 2's ensemble: src/eval.py scores them and their average once
# (eval/ keeps the probabilities; checkpoints are not kept in results/).
ABLATIONS_DIR = $(SWEEPS_DIR)/ablations-$(DATA)
reproduce-ablations: $(STAMP) $(if $(filter imagenet,$(DATA)),$(BETONS)) ## the paper's ablations (conf/ablation/), 3 seeds each, LRN's and the overfitting claims' apart, and the baseline's ensemble; DATA=fashion_mnist|cifar10|imagenet IMAGENET=DIR [~100 min on fashion_mnist with PARALLEL=2; SEEDS=[0] ~35 min]
	$(SWEEP) sweeps/ablations.yaml --dir $(ABLATIONS_DIR) $(ABLATION_DATA_$(DATA)) $(SCALE) $(SMOKE_SWEEP)
	$(foreach set,lrn overfitting,$(if $(ABLATION_$(set)_$(DATA)),$(SWEEP) sweeps/ablations.yaml \
	  --dir $(ABLATIONS_DIR)-$(set) $(ABLATION_$(set)_$(DATA)) $(SCALE) $(SMOKE_SWEEP) &&)) true
	$(REPORT) ablations $(ABLATIONS_DIR) --out $(RESULTS)/ablations-$(DATA)
	$(foreach set,lrn overfitting,$(if $(ABLATION_$(set)_$(DATA)),$(REPORT) ablations $(ABLATIONS_DIR)-$(set) \
	  --out $(RESULTS)/ablations_$(set)-$(DATA) &&)) true
	test -f $(ABLATIONS_DIR)/eval/results.json || $(PYTHON) src/eval.py \
	  "ckpt_paths=[$$(ls -d $(ABLATIONS_DIR)/runs/*-baseline-* | paste -sd, -)]" \
	  hydra.run.dir=$(ABLATIONS_DIR)/eval $(SMOKE_EVAL)
	$(REPORT) ensemble $(ABLATIONS_DIR)/eval --out $(RESULTS)/ensemble-$(DATA)

reproduce-lrn-cifar: $(STAMP) ## CIFAR-10 LRN claim, conv_local (cuda-convnet's conv-local nets) LRN off/code x 3 seeds, 100 epochs; DATA=cifar10|fashion_mnist [~12 h on fashion_mnist; EPOCHS=4 SEEDS=[0,1] ~19 min]
	$(SWEEP) sweeps/lrn_cifar.yaml --dir $(SWEEPS_DIR)/lrn_cifar-$(DATA) --set data=$(DATA) $(SCALE) $(SMOKE_SWEEP)
	$(REPORT) lrn-cifar $(SWEEPS_DIR)/lrn_cifar-$(DATA) --out $(RESULTS)/lrn_cifar-$(DATA)

reproduce-table1: $(STAMP) $(BETONS) ## Table 1's CNN on ImageNet through FFCV, 5 seeds; IMAGENET=DIR (for make data-beton), a GPU [~days per run]
	$(SWEEP) sweeps/table1.yaml --dir $(SWEEPS_DIR)/table1 $(SCALE) $(SMOKE_SWEEP)
	$(REPORT) table1 $(SWEEPS_DIR)/table1 --out $(RESULTS)/table1

evaluate-table1: $(STAMP) $(BETONS) ## the 5 seeds of reproduce-table1 as single nets and as an ensemble (Table 2's 5-CNN row), 10 test patches [~minutes on a GPU]
	$(PYTHON) src/eval.py "ckpt_paths=[$$(ls -d $(SWEEPS_DIR)/table1/runs/* | paste -sd, -)]" hydra.run.dir=$(SWEEPS_DIR)/table1/eval $(SMOKE_EVAL) $(ARGS)
	$(REPORT) ensemble $(SWEEPS_DIR)/table1/eval --out $(RESULTS)/table1_ensemble

BUDGET ?= 60
more-seeds: $(STAMP) ## more seeds for the inconclusive ablation rows that 12 seeds or fewer could decide, within BUDGET minutes of machine time [BUDGET=60] -> results/more_seeds.md, then make claims
	set -f -o pipefail; $(REPORT) more-seeds $(SWEEPS_DIR) --budget $(BUDGET) --out $(RESULTS)/more_seeds | \
	  while read -r args; do $(SWEEP) $$args < /dev/null || exit 1; done
	$(MAKE) claims

claims: $(STAMP) ## every claim of the paper with its verdict, from the runs in results/sweeps -> results/claims.md and .json; every sweep's table -> results/all_sweeps.md [~15 s]
	$(REPORT) claims $(SWEEPS_DIR) --out $(RESULTS)/claims
	$(REPORT) sweeps $(SWEEPS_DIR) --out $(RESULTS)/all_sweeps
