# Two commands set everything up on a fresh machine (see README, Quickstart):
#   make demo   converts the bundled sample photos to Monet paintings
#   make test   runs the test suite
#   make test-ray  installs the ray extra and runs the ccv convert --ray tests
#   make test-s3   installs s3fs and a local S3 server (moto) and runs the object store tests
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/ccv: pyproject.toml
	$(PY) -m venv $(VENV)
	# torch first: the CPU build; a plain "torch" requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[cpu,test]'
	touch $(BIN)/ccv

install: $(BIN)/ccv

demo: $(BIN)/ccv
	$(BIN)/ccv convert cyclegan_convert/samples --to monet -o out/samples_monet

test: $(BIN)/ccv
	$(BIN)/pytest -q

# ccv convert --ray's tests (they skip in `make test`): Ray Data is an optional extra of about
# 500 MB installed (ray, pyarrow, pandas), too heavy for every install and CI run.
test-ray: $(BIN)/ccv
	$(BIN)/pip install -q -e '.[ray]'
	$(BIN)/pytest -q tests/test_ray.py

# The object store tests on fsspec's in-memory store run in `make test`; these add S3 through a local
# moto server (moto[server] brings about 250 MB: cfn-lint, sympy, botocore), with --ray too where
# Ray is installed.
test-s3: $(BIN)/ccv
	$(BIN)/pip install -q -e '.[s3]' 'moto[server]>=5'
	$(BIN)/pytest -q tests/test_object_store.py

.PHONY: install demo test test-ray test-s3
