# The README's two commands: `make reproduce` (main job) and `make test` (tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
EXPERIMENT ?= all
# CIFAR-10: $ROTNET_DATA if set (the folder holding cifar-10-batches-py/), else ./data; `make train` downloads it

.PHONY: install test test-fast test-all reproduce train rotnet-seeds cpu-seeds cpu-ablations paper-views-seeds bench lint tables notebooks

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: a bare range would download a multi-GB CUDA build
	$(PY) -m pip install -q -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,notebooks]'
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q

# the core and protocol tests: `make test` without the tests marked slow (times: results/bench/test-times.csv)
test-fast: install
	$(PY) -m pytest -q -m 'not slow'

test-all: install
	$(PY) -m pytest -q -m ''

# The main job: every table and figure from the committed runs (records in runs/, the source of results/*.csv), in seconds; then what
# training the rest would take. `make train` trains what is missing (hours on a CPU; it says how many first).
# The seeds behind the tables: RotNet seed 0 with head seeds 0, 1, 2 on it; `rotnet-seeds`: RotNet seeds 1 and 2.
SEEDS_ARGS := --seeds 2 --first-seed 1 --backbone-seed 0
reproduce: install
	$(PY) -m rotnet_repro rows  # results/*.csv as the committed run records say (missing rows written again)
	$(PY) -m rotnet_repro tables
	$(PY) notebooks/build.py
	@echo "left to train at the $(PROFILE) profile (make train trains them):"
	@printf "  seed 0: " && $(PY) -m rotnet_repro run $(EXPERIMENT) --profile $(PROFILE) --dry-run | tail -1
	@printf "  head seeds 1 and 2 on RotNet 0: " && \
		$(PY) -m rotnet_repro run $(EXPERIMENT) --profile $(PROFILE) --dry-run $(SEEDS_ARGS) | tail -1

train: install
	$(PY) -m rotnet_repro run $(EXPERIMENT) --profile $(PROFILE) --download
	$(PY) -m rotnet_repro run $(EXPERIMENT) --profile $(PROFILE) --download $(SEEDS_ARGS)

rotnet-seeds: install
	$(PY) -m rotnet_repro run table3_comparison fig5a_epoch_curve fig5b_semi_supervised --profile $(PROFILE) \
		--download --seeds 2 --first-seed 1
	$(PY) -m rotnet_repro run table1_block_depth table2_rotations --rows '^(RotNet 4 conv blocks|4 rotations)' \
		--profile $(PROFILE) --download --seeds 2 --first-seed 1

# RotNet seeds 1 and 2 of every cpu RotNet trained once (3/5 blocks, 8 and 2 rotations), each with its heads, and
# the Fig. 5(b) supervised seeds: hours on 2 cores, resumable (rerun to continue); rows land in results/cpu.csv
cpu-seeds: install
	$(PY) -m rotnet_repro run table1_block_depth table2_rotations --rows '^(RotNet [35] conv|8 rotations|2 rotations)' \
		--profile cpu --download --seeds 2 --first-seed 1 --workers 2 --threads 1
	$(PY) -m rotnet_repro run fig5b_semi_supervised --rows '^Supervised' --profile cpu --download --seeds 3 \
		--workers 2 --threads 1

# the cpu ablations (REPORT, "Variants and ablations"): the 8-rotation RotNet at the 4-rotation one's rotated
# samples, and PyTorch 0.2's BatchNorm init on the shared RotNet with Table 3's heads; 3 seeds each
cpu-ablations: install
	$(PY) -m rotnet_repro run table2_rotations --rows '^8 rotations' --set rotations_per_image=4 --profile cpu \
		--download --seeds 3 --workers 2 --threads 1
	$(PY) -m rotnet_repro run table2_rotations table3_comparison --rows '^(4 rotations|RotNet \+ (non-linear|conv)$$)' \
		--columns '^(rotation|accuracy)$$' --set bn_init=uniform --profile cpu --download --seeds 3 --workers 2 --threads 1

# Full scale on the CPU (issue: claim 5 and Table 1's 4-block row with n=3 head seeds): head seeds 1 and 2 of the
# conv2 non-linear head on each snapshot of the full-protocol 4-block RotNet (paper-views: 16 cached views), one
# snapshot at a time so that one store of views is on disk at once (conv2, about 10 GB), then conv1, conv3 and
# conv4. Hours on 2 cores; resumable (rerun to continue); rows land in results/paper-views.csv.
PAPER_VIEWS_SEEDS := --profile paper-views --seeds 2 --first-seed 1 --backbone-seed 0
paper-views-seeds: install
	for e in 20 40 60 80 100; do \
		$(PY) -m rotnet_repro run fig5a_epoch_curve --rows '^object' --columns "^$$e$$" $(PAPER_VIEWS_SEEDS) || exit 1; done
	$(PY) -m rotnet_repro run table1_block_depth --rows '^RotNet 4 conv' --columns '^ConvB[134]$$' $(PAPER_VIEWS_SEEDS)

bench: install
	$(PY) -m rotnet_repro bench

lint: install
	$(VENV)/bin/ruff check rotnet_repro tests

tables: install
	$(PY) -m rotnet_repro tables
	$(PY) notebooks/build.py  # the notebooks, executed on the committed results

notebooks: install
	$(PY) -m pytest -q tests/test_notebooks.py
