"""Offline stand-in for ansible-test's get-pip bootstrap script (its download host is unreachable here).

ansible-test runs this file as `python get_pip.py pip==X ...`: bootstrap pip from the interpreter's bundled
ensurepip wheel, then install what was asked for from the configured package index (PyPI).
"""
import ensurepip
import os
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
ensurepip.bootstrap(upgrade=True)
# ensurepip leaves PIP_CONFIG_FILE=/dev/null behind: drop it so /etc/pip.conf (CA bundle, index) applies
os.environ.pop('PIP_CONFIG_FILE', None)
os.environ.pop('ENSUREPIP_OPTIONS', None)
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install'] + args))
