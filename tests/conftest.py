"""Make the repository importable as ansible_collections.fastboot.cloud for every test."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, '.build', 'collections')
LINK = os.path.join(COLLECTIONS, 'ansible_collections', 'fastboot', 'cloud')


def _ensure_link():
    # ansible-test runs the tests from its own copy already under ansible_collections/: leave that alone
    if os.sep + 'ansible_collections' + os.sep in ROOT + os.sep:
        return
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    if not os.path.islink(LINK):
        os.symlink(ROOT, LINK)
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)


_ensure_link()
