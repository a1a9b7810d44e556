# The two commands of a fresh machine are `make book` (set up, then build and read the book)
# and `make test` (set up, then run every test and every notebook). Everything else is a step.
PYTHON ?= python3
# torch, when none is installed, is the CPU build: PyPI's Linux wheels are multi-GB CUDA
# builds, so it comes from PyTorch's CPU index if that answers within seconds, else from
# the index pip is configured with (a mirror), its CPU build if it has one
# (scripts/install_torch.py; `make setup TORCH_INDEX=` skips the CPU index).
# CI installs its CPU torch into its virtualenv before calling make (.ci/run).
TORCH_SPEC ?= torch>=2.4
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
# One run's outputs (adapter, checkpoints, metrics.json, loss.png).
RUN_DIR ?= runs/tiny

.PHONY: setup train tiny-model test test-unit test-notebooks test-rehearsal test-export test-export-if-built benchmarks clean book book-html

setup:
	$(PYTHON) scripts/install_torch.py --spec "$(TORCH_SPEC)" --index "$(TORCH_INDEX)"
	$(PYTHON) -m pip install -c constraints-colab.txt -e ".[dev]"  # the versions Colab gets too

# QLoRA-tune the tiny preset on the CPU: the real 4-bit path, about 2-3 minutes.
train: setup
	ift-tutorial train --config tiny --output-dir $(RUN_DIR)

# Rebuild data/tiny-llama from scratch (corpus, tokenizer, pretraining).
tiny-model: setup
	ift-tutorial pretrain

# Unit tests, every chapter notebook under nbval (training included), then the rendered
# book: built with -W and checked in headless Chromium, and the figures drawn in Chinese
# (IFT_BOOK_TESTS=1: no skipping; a missing browser or CJK font fails).
test: setup
	$(PYTHON) -m ift_tutorial.inference.converter  # llama.cpp's converter, fetched once (PyPI sdist)
	$(PYTHON) -m pytest tests
	$(MAKE) test-notebooks
	$(MAKE) test-rehearsal
	$(MAKE) book-html
	IFT_BOOK_TESTS=1 $(PYTHON) -m pytest tests/book/test_book.py tests/book/test_book_editions.py \
		tests/book/test_built_pages.py tests/book/test_figure_resolution.py \
		tests/book/test_fonts.py tests/test_i18n.py
	$(MAKE) test-export-if-built

test-unit:
	$(PYTHON) -m pytest tests

# The live parity of the GGUF export (chapter 10): llama.cpp, through llama-cpp-python (the
# export extra), tokenises the project's texts and answers the held-out questions; f32 and
# f16 must answer as transformers does. The extra builds from source, without the multimodal
# library it does not need: about 10 minutes cold on two cores, seconds once pip has cached
# the wheel. Writes benchmarks/results/export_parity.json and .md (about 2 minutes).
EXPORT_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF
test-export:
	CMAKE_ARGS="$(EXPORT_CMAKE_ARGS)" $(PYTHON) -m pip install -e ".[export]"
	$(PYTHON) benchmarks/export_parity.py

# `make test` runs the live parity when pip has the llama-cpp-python wheel cached (a machine
# that ran `make test-export` before: about 2 minutes) or when IFT_CI_EXPORT=1 asks for the
# cold build (about 10 minutes more, which would take CI past its 30).
test-export-if-built:
	@if [ "$${IFT_CI_EXPORT:-}" = 1 ] || $(PYTHON) -m pip cache list llama_cpp_python 2>/dev/null \
		| grep -q "llama_cpp_python-0.3.36"; then \
		$(MAKE) test-export; \
	else \
		echo "make test-export not run: no cached llama-cpp-python wheel (IFT_CI_EXPORT=1 builds one)"; \
	fi

test-notebooks:
	$(PYTHON) -m pytest --nbval-lax book/chapters

# Rehearsal (ift_tutorial/rehearsal/): the 7B branches on the CPU, with shrunk random
# stand-ins of the presets' real architectures, and a ledger that charges the real model's GPU
# memory against a T4 (ift_tutorial/planning/ledger.py). `pytest tests` already runs
# `IFT_REHEARSAL=1 ift-tutorial train --config P ... --set training.max_steps=2` for every
# 7B preset (tests/rehearsal/test_rehearsal.py); this runs the chapters whose code depends on
# the preset, along their 7B branches, for every 7B preset. The other chapters run the same
# code under every preset (test-notebooks).
PRESET_CHAPTERS = $(shell grep -l -E 'load_config.PRESET|PRESET [!=]=' book/chapters/*.ipynb)
REHEARSAL_PRESETS ?= qwen2.5-7b llama-3.1-8b olmo-2-7b
test-rehearsal:
	@for preset in $(REHEARSAL_PRESETS); do \
		echo "rehearsal of $$preset"; \
		IFT_PRESET=$$preset IFT_REHEARSAL=1 $(PYTHON) -m pytest --nbval-lax $(PRESET_CHAPTERS) || exit 1; \
	done

# Execute every chapter (cached in book/_build/.jupyter_cache) and build the HTML book;
# warnings are errors. Offline: no model hub. MPLBACKEND is unset so that the kernels draw
# figures inline (with Agg they would draw nothing). IFT_QUIET_PROGRESS=1: no reader watches
# the cells run, so no progress bars in the pages (ift_tutorial/training/progress.py).
# Then the Chinese edition (book/zh, same code cells: book/sync_zh.py --check) into
# book/_build/html/zh/: it executes its own notebooks (their figures have Chinese labels).
# IFT_REUSE_RUNS=1: a training cell copies a finished run of the same config and code
# (from `make test-notebooks`, or the English build for the Chinese one) instead of
# training it again (ift_tutorial/training/finished_runs.py); with none, it trains.
BOOK_ENV = env -u MPLBACKEND HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
	TOKENIZERS_PARALLELISM=false IFT_QUIET_PROGRESS=1 IFT_REUSE_RUNS=1

book: setup book-html

book-html:
	$(BOOK_ENV) jupyter-book build book -W --keep-going
	$(PYTHON) book/sync_zh.py --check
	$(BOOK_ENV) jupyter-book build book/zh --path-output book/_build/zh -W --keep-going
	rm -rf book/_build/html/zh && cp -r book/_build/zh/_build/html book/_build/html/zh
	@echo "open book/_build/html/index.html (中文版: book/_build/html/zh/index.html)"

benchmarks:
	$(PYTHON) benchmarks/run_all.py

clean:
	rm -rf runs book/_build
