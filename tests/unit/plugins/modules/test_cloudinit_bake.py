# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the cloudinit_bake module: documentation vs argument_spec, option checks, the OpenStack
datasource-list safety rule and the rendered files."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
import yaml

from ansible_collections.fastboot.cloud.plugins.module_utils.common import InputError
from ansible_collections.fastboot.cloud.plugins.modules import cloudinit_bake as mod


def params(**kw):
    out = dict((k, v.get('default')) for k, v in mod.ARGUMENT_SPEC.items())
    out.update(kw)
    return out


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(mod.DOCUMENTATION)
    assert doc['module'] == 'cloudinit_bake'
    options = doc['options']
    assert set(options) == set(mod.ARGUMENT_SPEC)
    for name, spec in mod.ARGUMENT_SPEC.items():
        assert options[name]['type'] == spec['type'], name
        assert options[name].get('default') == spec.get('default'), name
        assert options[name].get('choices') == spec.get('choices'), name
        assert options[name].get('elements') == spec.get('elements'), name
    returns = yaml.safe_load(mod.RETURN)
    for key in ('src', 'image', 'image_format', 'partition', 'partition_offset', 'cfg_path', 'cfg', 'units_masked',
                'changes', 'diff', 'msg', 'duration'):
        assert key in returns
    yaml.safe_load(mod.EXAMPLES)


@pytest.mark.parametrize('datasources', [
    ['ConfigDrive', 'OpenStack', 'None'], ['ConfigDrive', 'OpenStack'], ['OpenStack'], ['OpenStack', 'None'],
    ['ConfigDrive', 'Ec2', 'OpenStack'],
])
def test_safe_lists(datasources):
    assert mod.datasource_problem(datasources, 'openstack') is None
    assert mod.validate(params(datasource_list=datasources)) == []


@pytest.mark.parametrize('datasources, why', [
    (['ConfigDrive', 'Ec2'], 'ds-identify drops Ec2'),
    (['ConfigDrive', 'Ec2', 'None'], 'ds-identify drops Ec2'),
    (['ConfigDrive'], 'falls back to the None datasource'),
    (['ConfigDrive', 'None'], 'falls back to the None datasource'),
    (['OpenStack', 'ConfigDrive'], 'no OpenStack'),
    (['Ec2', 'None'], 'neither ConfigDrive nor OpenStack'),
    (['NoCloud'], 'neither ConfigDrive nor OpenStack'),
])
def test_unsafe_lists_refused_unless_allowed(datasources, why):
    with pytest.raises(InputError) as err:
        mod.validate(params(datasource_list=datasources))
    assert why in err.value.msg
    warnings = mod.validate(params(datasource_list=datasources, allow_unsafe_datasource_list=True))
    assert warnings and warnings[0].startswith('UNSAFE') and why in warnings[0]
    assert mod.validate(params(datasource_list=datasources, platform='any')) == (
        [] if datasources[0] == 'ConfigDrive' or 'ConfigDrive' not in datasources else warnings[1:])


def test_configdrive_not_first_warns():
    warnings = mod.validate(params(datasource_list=['OpenStack', 'ConfigDrive', 'OpenStack'][:1] + ['ConfigDrive'],
                                   platform='any'))
    assert any('not first' in w for w in warnings)


@pytest.mark.parametrize('bad', [
    dict(datasource_list=['Openstack']), dict(datasource_list=[]), dict(datasource_list=['OpenStack', 'OpenStack']),
    dict(name='../x'), dict(name='a b'), dict(metadata_timeout=-1), dict(disable_units=['pollinate']),
    dict(disable_units=['x.service; rm']), dict(ds_identify_policy='enabled\nx: y'),
])
def test_bad_options(bad):
    with pytest.raises(InputError):
        mod.validate(params(**bad))


def test_render_cfg_default():
    text = mod.render_cfg(params())
    data = yaml.safe_load(text)
    assert data == {'datasource_list': ['ConfigDrive', 'OpenStack', 'None'],
                    'datasource': {'OpenStack': {'max_wait': 5, 'timeout': 2, 'retries': 1}}}
    assert text.endswith('\n')


def test_render_cfg_only_url_datasources_get_timeouts():
    data = yaml.safe_load(mod.render_cfg(params(datasource_list=['ConfigDrive', 'Ec2', 'NoCloud'], metadata_max_wait=3,
                                                metadata_timeout=1, metadata_retries=0)))
    assert data['datasource'] == {'Ec2': {'max_wait': 3, 'timeout': 1, 'retries': 0}}
    data = yaml.safe_load(mod.render_cfg(params(datasource_list=['ConfigDrive', 'None'])))
    assert 'datasource' not in data and data['datasource_list'] == ['ConfigDrive', 'None']


def test_render_ds_identify():
    assert yaml.safe_load(mod.render_ds_identify('search,found=all,maybe=all,notfound=disabled')) == {
        'policy': 'search,found=all,maybe=all,notfound=disabled'}
