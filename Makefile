# The two commands of a fresh machine are `make book` (set up, then build and read the book)
# and `make test` (set up, then run every test and every notebook). Everything else is a step.
PYTHON ?= python3
# The CPU build of torch: a plain `pip install torch` would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# One run's outputs (adapter, checkpoints, metrics.json, loss.png).
RUN_DIR ?= runs/tiny

.PHONY: setup train tiny-model test test-unit test-notebooks test-rehearsal benchmarks clean book book-html

setup:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install "$(TORCH_SPEC)"
	$(PYTHON) -m pip install -c constraints-colab.txt -e ".[dev]"  # the versions Colab gets too

# QLoRA-tune the tiny preset on the CPU: the real 4-bit path, about 2-3 minutes.
train: setup
	ift-tutorial train --config tiny --output-dir $(RUN_DIR)

# Rebuild data/tiny-llama from scratch (corpus, tokenizer, pretraining).
tiny-model: setup
	ift-tutorial pretrain

# Unit tests, every chapter notebook under nbval (training included), then the rendered
# book: built with -W and checked in headless Chromium (IFT_BOOK_TESTS=1: no skipping).
test: setup
	$(PYTHON) -m pytest tests
	$(MAKE) test-notebooks
	$(MAKE) test-rehearsal
	$(MAKE) book-html
	IFT_BOOK_TESTS=1 $(PYTHON) -m pytest tests/test_book.py

test-unit:
	$(PYTHON) -m pytest tests

test-notebooks:
	$(PYTHON) -m pytest --nbval-lax book/chapters

# Rehearsal (ift_tutorial/rehearsal.py): the 7B branches on the CPU, with shrunk random
# stand-ins of the presets' real architectures. `pytest tests` already runs
# `IFT_REHEARSAL=1 ift-tutorial train --config P ... --set training.max_steps=2` for every
# 7B preset (tests/test_rehearsal.py); this runs the chapters whose code depends on the
# preset. The other chapters run the same code under every preset (test-notebooks).
PRESET_CHAPTERS = $(shell grep -l -E 'load_config.PRESET|PRESET [!=]=' book/chapters/*.ipynb)
test-rehearsal:
	IFT_PRESET=qwen2.5-7b IFT_REHEARSAL=1 $(PYTHON) -m pytest --nbval-lax $(PRESET_CHAPTERS)

# Execute every chapter (cached in book/_build/.jupyter_cache) and build the HTML book;
# warnings are errors. Offline: no model hub. MPLBACKEND is unset so that the kernels draw
# figures inline (with Agg they would draw nothing). IFT_QUIET_PROGRESS=1: no reader watches
# the cells run, so no progress bars in the pages (ift_tutorial/progress.py).
book: setup book-html

book-html:
	env -u MPLBACKEND HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
		TOKENIZERS_PARALLELISM=false IFT_QUIET_PROGRESS=1 jupyter-book build book -W --keep-going
	@echo "open book/_build/html/index.html"

benchmarks:
	$(PYTHON) benchmarks/run_all.py

clean:
	rm -rf runs book/_build
