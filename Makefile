# Two commands matter (see README):
#   make demo   set up .venv and render the demo profiles into out/ (offline, no credentials)
#   make test   install every test dependency (root: apt packages, containerd 1.6/1.7/2.x,
#               cloud-init, Packer, a Debian rootfs) and run the whole suite, system tests included
.PHONY: demo test test-fast setup clean

VENV ?= .venv

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/python scripts/demo-key.py profiles/keys/demo-gar-key.json
	$(VENV)/bin/regauth render profiles/demo.yaml profiles/demo-boot-fetch.yaml
	@echo "open out/demo/ (key in user-data, 0600) and out/demo-boot-fetch/ (no key: fetched at boot)"

test:
	bash scripts/test.sh

test-fast: setup
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf out/*/ build dist *.egg-info
