# fastboot.cloud: set-up and test entry points. See README.md.
SHELL := /bin/bash
ROOT := $(abspath .)
VENV ?= $(ROOT)/.venv
BUILD := $(ROOT)/.build
# the venv first (ansible, molecule), then Debian's own tools (ceph, rbd run under /usr/bin/python3)
export PATH := $(VENV)/bin:/usr/sbin:/usr/bin:/sbin:/bin:$(PATH)
export CONTAINERS_CONF ?= $(ROOT)/tools/lab/containers.conf
export ANSIBLE_COLLECTIONS_PATH := $(BUILD)/collections
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export FASTBOOT_LAB_DIR ?= /var/tmp/fastboot-lab
LAB_VMS ?= 5
# the lab's OSD (a sparse file): Nova on RBD reports the cluster's size as its disk, LAB_VMS x 4 GiB (lab.small) must fit
LAB_CEPH_GB ?= 48
# a private ANSIBLE_HOME: molecule installs the collection under it, and a copy in ~/.ansible would shadow this tree
export ANSIBLE_HOME := $(BUILD)/ansible-home

.PHONY: help deps lab lab-down test lint sanity units integration openstack molecule bench docs clean

help:
	@echo "make lab    - install what is needed, start the built-in lab (real Ceph), apply site.yml to it"
	@echo "make test   - install what is needed, run every test (lint, sanity, units, real-tool, molecule)"
	@echo "make bench  - benchmarks against the real lab (bench/)"
	@echo "make lab-down - stop the lab and remove its state"

deps: $(BUILD)/apt.stamp $(BUILD)/venv.stamp $(BUILD)/collections/ansible_collections/fastboot/cloud

$(BUILD)/apt.stamp: tools/deps/apt-packages.txt tools/deps/apt-install.sh
	mkdir -p $(BUILD)
	tools/deps/apt-install.sh $<
	touch $@

# the OpenStack all-in-one's Debian packages (its own installer: debconf preseeds, no service started)
$(BUILD)/openstack.stamp: tools/lab/openstack.sh $(BUILD)/apt.stamp
	tools/lab/openstack.sh install
	touch $@

# Debian's python with system site packages: python3-rbd/rados import only there
$(BUILD)/venv.stamp: requirements-dev.txt $(BUILD)/apt.stamp
	[ -x $(VENV)/bin/python ] || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

$(BUILD)/collections/ansible_collections/fastboot/cloud:
	mkdir -p $(dir $@)
	ln -sfn $(ROOT) $@

lab: deps $(BUILD)/openstack.stamp
	CEPH_BLOCK_GB=$(LAB_CEPH_GB) tools/lab/ceph.sh up
	tools/lab/openstack.sh up
	# before (default cloud) -> site.yml (twice: the second changes nothing) -> after (RBD clones, config
	# drive), LAB_VMS servers each time; the report goes to $(FASTBOOT_LAB_DIR)/bench/lab-e2e.{md,png,json}
	python bench/lab_e2e.py --vms $(LAB_VMS) --out $(FASTBOOT_LAB_DIR)/bench
	@echo "lab ready: CEPH_CONF=$(FASTBOOT_LAB_DIR)/ceph/ceph.conf; $$(tools/lab/openstack.sh env); 'make lab-down' stops it"

lab-down:
	tools/lab/openstack.sh down
	tools/lab/ceph.sh down

test: deps $(BUILD)/openstack.stamp
	tools/ci/run-tests.sh

lint: deps
	tools/ci/run-tests.sh lint

sanity: deps
	tools/ci/run-tests.sh sanity

units: deps
	tools/ci/run-tests.sh units

integration: deps
	tools/ci/run-tests.sh integration

openstack: deps $(BUILD)/openstack.stamp
	tools/ci/run-tests.sh openstack

molecule: deps
	tools/ci/run-tests.sh molecule

bench: deps
	tools/lab/ceph.sh up
	python bench/ceph_clone_vs_copy.py --sizes 1,4
	python bench/convert_overhead.py

docs: deps
	python tools/docs/role_docs.py --write

clean:
	rm -rf $(BUILD) tests/output
