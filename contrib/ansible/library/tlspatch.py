#!/usr/bin/python3
# -*- coding: utf-8 -*-
# Ansible module: run tlspatch on the hosts that hold Windows disk images,
# mounted volumes or hive files. It is a thin client of tlspatch's JSON
# Lines: tlspatch decides, this module only reports.

DOCUMENTATION = r'''
---
module: tlspatch
short_description: Offline TLS hardening of Windows images and registry hives
description:
  - Runs C(tlspatch apply) on the targets: hive files, mounted Windows volumes,
    disk images or image URIs. Makes KB 4033999 (and any --profile or --settings)
    true, offline, on images that are not running.
  - In check mode nothing is written (C(tlspatch apply --dry-run)); the task
    reports C(changed) when something would change.
  - With --diff, each value that changes (or would) is shown.
  - A target that tlspatch refuses or fails on fails the task with tlspatch's
    one-line error; nothing was written to it.
options:
  targets:
    description: Hive files, folders, disk images or image URIs on the managed host.
    type: list
    elements: str
    required: true
  profiles:
    description: tlspatch profiles (C(kb4033999), C(pci)); default kb4033999.
    type: list
    elements: str
  settings:
    description: .reg files on the managed host whose settings to make true.
    type: list
    elements: path
  undo:
    description:
      - Undo record to write (C(tlspatch apply --undo)). tlspatch never overwrites
        one: when it exists, the task is idempotent only while nothing would change.
    type: path
  services:
    description: Services to start at next boot (default obengine); an empty list starts none.
    type: list
    elements: str
  format:
    description: Disk image format of the targets (raw, qcow2, vmdk, vhdx, vpc).
    type: str
  executable:
    description: Path of tlspatch.
    type: path
    default: tlspatch
'''

EXAMPLES = r'''
- name: Audit every image, then patch it
  tlspatch:
    targets: "{{ found.files | map(attribute='path') | list }}"
    undo: /var/lib/tlspatch/undo-{{ ansible_date_time.iso8601_basic_short }}.reg
'''

RETURN = r'''
results:
  description: tlspatch's JSON objects, one per hive or Windows installation.
  returned: always
  type: list
  elements: dict
cmd:
  description: The tlspatch command run.
  returned: always
  type: list
'''

import json
import os

from ansible.module_utils.basic import AnsibleModule

CHANGED = ('patched', 'would_patch')


def command(params, dry_run):
    cmd = [params['executable'], 'apply', '--json']
    if dry_run:
        cmd.append('--dry-run')
    elif params['undo']:
        cmd += ['--undo', params['undo']]
    for name in params['profiles'] or []:
        cmd += ['--profile', name]
    for path in params['settings'] or []:
        cmd += ['--settings', path]
    if params['services'] is not None:
        if not params['services']:
            cmd.append('--no-service')
        for name in params['services']:
            cmd += ['--service', name]
    if params['format']:
        cmd += ['--format', params['format']]
    return cmd + ['--'] + params['targets']


def run(module, cmd):
    rc, out, err = module.run_command(cmd)
    results = []
    for line in out.splitlines():
        if line.strip():
            try:
                results.append(json.loads(line))
            except ValueError:
                module.fail_json(msg='tlspatch printed a line that is not JSON: %s' % line,
                                 cmd=cmd, rc=rc, stderr=err)
    return rc, results, err


def value_text(value, kind):
    if value is None:
        return '(absent)'
    return '%s %s' % (kind, json.dumps(value))


def diffs(results):
    out = []
    for res in results:
        before, after = [], []
        for ch in res.get('changes', []):
            where = ch['key'] + ('\\' + ch['name'] if ch.get('name') is not None else '')
            if ch.get('op') in ('create_key', 'delete_key'):
                was, now = ('(absent)', '(key)') if ch['op'] == 'create_key' else ('(key)', '(absent)')
            else:
                was = value_text(ch.get('old'), ch.get('old_type'))
                now = value_text(ch.get('new'), ch.get('new_type'))
            before.append('%s = %s\n' % (where, was))
            after.append('%s = %s\n' % (where, now))
        if before:
            name = res.get('target', '')
            if res.get('root'):
                name += ' ' + res['root']
            out.append({'before_header': name, 'after_header': name,
                        'before': ''.join(before), 'after': ''.join(after)})
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            targets=dict(type='list', elements='str', required=True),
            profiles=dict(type='list', elements='str'),
            settings=dict(type='list', elements='path'),
            undo=dict(type='path'),
            services=dict(type='list', elements='str'),
            format=dict(type='str', choices=['raw', 'qcow2', 'vmdk', 'vhdx', 'vpc']),
            executable=dict(type='path', default='tlspatch'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not params['targets']:
        module.fail_json(msg='targets is empty')
    # tlspatch refuses an existing undo record before reading anything:
    # a dry run first tells whether a rerun has anything to do.
    dry = module.check_mode or bool(params['undo'] and os.path.lexists(params['undo']))
    cmd = command(params, dry)
    rc, results, err = run(module, cmd)
    if rc == 0 and dry and not module.check_mode and any(r.get('status') in CHANGED for r in results):
        cmd = command(params, False)
        rc, results, err = run(module, cmd)
    changed = any(r.get('status') in CHANGED for r in results)
    outcome = dict(changed=changed, results=results, cmd=cmd, rc=rc)
    if module._diff:
        outcome['diff'] = diffs(results)
    if rc != 0:
        lines = [l for l in err.splitlines() if l.startswith('tlspatch: ')]
        module.fail_json(msg=lines[0] if lines else (err.strip() or 'tlspatch exited with %d' % rc),
                         stderr=err, **outcome)
    module.exit_json(**outcome)


if __name__ == '__main__':
    main()
