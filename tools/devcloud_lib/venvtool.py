"""Helpers of tools/devcloud that need OpenStack libraries: run with the
service venv's python (service_venv.venvtool does that).

    venvtool.py keystone-init JSON
                                projects/users/roles; per service (JSON:
                                {name: account}, see services/base.py)
                                its user, catalog entry, limits
    venvtool.py wait-nova HOST SINCE PID LOG
                                until conductor/scheduler/compute are up
                                (reported after SINCE), the compute RP has
                                inventory, HOST is in a cell; fails at once
                                when the compute PID exits or LOG says it
                                failed to start
    venvtool.py compute-services [--prepare] HOST [OTHER...]
                                enable nova-compute on HOST (--prepare:
                                only clear its forced_down), force down
                                and disable OTHERs
    venvtool.py keystone-remove ENDPOINT_ID
                                delete the catalog service of that
                                endpoint, and all its endpoints: a
                                service turned off
    venvtool.py flavors JSON    create the flavors {name: [vcpus, ram,
                                disk]}
    venvtool.py leaks           print what is left (servers, images,
                                allocations)
"""

import calendar
import json
import os
import subprocess
import sys
import time

import openstack

D = os.environ['DEVCLOUD_DIR']
STATE = os.path.join(D, 'state')
KEYSTONE = 'http://127.0.0.1:25000/v3'
REGION = 'RegionOne'


def admin():
    return openstack.connect(
        auth_url=KEYSTONE,
        username='admin',
        password='admin-secret',
        project_name='admin',
        user_domain_name='Default',
        project_domain_name='Default',
        region_name=REGION,
        identity_api_version='3',
    )


def keystone_init(services):
    """Projects, users, roles; each service's user, catalog and limits.

    :param services: {name: account} of the services (services/*.py
        ``account``): password, type, url, optional system_reader (a
        system-scoped reader role) and limits (registered limits).
    """
    c = admin()
    idn = c.identity

    def project(name, desc):
        return idn.find_project(
            name, domain_id='default'
        ) or idn.create_project(
            name=name, domain_id='default', description=desc
        )

    def user(name, pw, project=None):
        u = idn.find_user(name, domain_id='default')
        if u:
            return u
        kw = {'default_project_id': project.id} if project else {}
        return idn.create_user(
            name=name, password=pw, domain_id='default', **kw
        )

    roles = {r.name: r for r in idn.roles()}
    for r in ('admin', 'member', 'reader', 'service'):
        if r not in roles:
            roles[r] = idn.create_role(name=r)
    service_p = project('service', 'devcloud service users')
    demo_p = project('demo', 'devcloud demo project')
    other_p = project('other', 'devcloud second project (sharing tests)')
    for name, p in (('demo', demo_p), ('other', other_p)):
        u = user(name, name + '-secret', p)
        idn.assign_project_role_to_user(p, u, roles['member'])
        idn.assign_project_role_to_user(p, u, roles['reader'])
    for name, acct in sorted(services.items()):
        u = user(name, acct['password'])
        idn.assign_project_role_to_user(service_p, u, roles['admin'])
        idn.assign_project_role_to_user(service_p, u, roles['service'])
        if acct.get('system_reader'):
            idn.assign_system_role_to_user(u, roles['reader'], 'all')

    catalog = {s.type: s for s in idn.services()}
    endpoints = {}
    for name, acct in sorted(services.items()):
        svc = catalog.get(acct['type']) or idn.create_service(
            name=name, type=acct['type'])
        have = {e.interface: e for e in idn.endpoints(service_id=svc.id)}
        for iface in ('public', 'internal', 'admin'):
            if iface not in have:
                have[iface] = idn.create_endpoint(
                    service_id=svc.id,
                    interface=iface,
                    url=acct['url'],
                    region_id=REGION,
                )
        endpoints[name] = have['public'].id
        if not acct.get('limits'):
            continue
        have = {
            rl.resource_name
            for rl in idn.registered_limits(service_id=svc.id)
        }
        for res, val in sorted(acct['limits'].items()):
            if res not in have:
                idn.create_registered_limit(
                    service_id=svc.id,
                    region_id=REGION,
                    resource_name=res,
                    default_limit=val,
                )
    out = {
        'endpoints': endpoints,
        'projects': {
            'demo': demo_p.id,
            'other': other_p.id,
            'service': service_p.id,
        },
    }
    with open(os.path.join(STATE, 'keystone.json'), 'w') as f:
        json.dump(out, f, indent=2)
    print('keystone content ready', out)


def wait_nova(host, since=0, compute_pid=0, compute_log=None,
              timeout=240):
    """Until conductor, scheduler and HOST's compute are up and mapped.

    Ends at once when the compute process ``compute_pid`` exits or logs
    that it failed to start (an oslo.service process stays alive then).
    """
    import pymysql

    import proc   # the devcloud's own process helpers (standard library)

    t0 = time.time()
    c = None
    last = None
    discovered = False
    while time.time() - t0 < timeout:
        if compute_pid and not proc.proc_alive(compute_pid):
            raise SystemExit('nova-compute (pid %d) exited; see %s'
                             % (compute_pid, compute_log))
        err = compute_pid and proc.startup_error(compute_log, compute_pid,
                                                 since)
        if err:
            raise SystemExit('nova-compute (pid %d) failed to start: %s '
                             '(see %s)' % (compute_pid, err, compute_log))
        try:
            if c is None:
                c = admin()
            svcs = {}
            for s in c.compute.services():
                if s.binary == 'nova-compute' and s.host != host:
                    continue  # the other mode's compute (stopped)
                fresh = True
                if since and s.updated_at:
                    ts = s.updated_at.replace('Z', '').split('.')[0]
                    fresh = (
                        calendar.timegm(time.strptime(ts, '%Y-%m-%dT%H:%M:%S'))
                        >= since - 1
                    )
                svcs[s.binary] = s.state if fresh else 'stale'
            # the resource provider of HOST's node (uuid = hypervisor id
            # from 2.53); not 2.88+, whose details ask every compute for its
            # uptime by RPC (60 s timeout for a stopped one)
            rps = [
                h['id']
                for h in c.compute.get(
                    '/os-hypervisors/detail', microversion='2.53'
                ).json()['hypervisors']
                if (h.get('service') or {}).get('host') == host
            ]
            inv = (
                rps
                and c.placement.get(
                    '/resource_providers/%s/inventories' % rps[0]
                ).json()['inventories']
            )
            db = pymysql.connect(
                host='127.0.0.1',
                user='devcloud',
                password='devcloud-db-secret',
                database='devcloud_nova_api',
            )
            with db.cursor() as cur:
                cur.execute(
                    'select host from host_mappings where host=%s', (host,)
                )
                mapped = cur.fetchall()
            db.close()
            last = (svcs, bool(inv), bool(mapped))
            if (
                all(
                    svcs.get(b) == 'up'
                    for b in (
                        'nova-conductor',
                        'nova-scheduler',
                        'nova-compute',
                    )
                )
                and inv
            ):
                if mapped:
                    print(
                        'nova ready after %.1fs: %s' % (time.time() - t0, last)
                    )
                    return
                if not discovered and time.time() - t0 > 8:
                    subprocess.run(
                        [
                            os.path.join(sys.prefix, 'bin', 'nova-manage'),
                            '--config-file',
                            os.path.join(D, 'etc/nova/nova.conf'),
                            'cell_v2',
                            'discover_hosts',
                        ],
                        capture_output=True,
                    )
                    discovered = True
        except Exception as e:  # services still starting
            last = repr(e)
            c = None if 'auth' in repr(e).lower() else c
        time.sleep(0.5)
    raise SystemExit('nova did not come up in %ds; last: %s' % (timeout, last))


def compute_services(enable, disable, prepare=False):
    """Enable nova-compute on host ENABLE, disable it on DISABLE hosts.

    Only one compute of the devcloud runs at a time (one per mode); a
    stopped one still counts as up for service_down_time seconds, and the
    scheduler must not pick it.
    """
    c = admin()

    def put(service, body):
        r = c.compute.put(
            '/os-services/%s' % service['id'],
            json=body,
            microversion='2.53',
        )
        if r.status_code != 200:
            raise SystemExit('PUT os-services %s %s: %s %s'
                             % (service['host'], body, r.status_code, r.text))

    services = c.compute.get(
        '/os-services?binary=nova-compute', microversion='2.53'
    ).json()['services']
    for s in services:
        # forced_down first: a stopped compute counts as up for
        # service_down_time, and disabling an "up" compute makes nova-api
        # wait for an RPC answer (60 s) that a stopped one never gives
        if s['host'] == enable:
            if s['forced_down']:
                put(s, {'forced_down': False})
            # enable only once the compute is up: nova-api then tells it to
            # drop the COMPUTE_STATUS_DISABLED trait from its provider (for
            # a compute it believes down it skips that, and the trait stays
            # until the compute's next periodic update)
            if s['status'] != 'enabled' and not prepare:
                put(s, {'status': 'enabled'})
                print('enabled nova-compute on %s' % s['host'])
        elif s['host'] in disable:
            if not s['forced_down']:
                put(s, {'forced_down': True})
            if s['status'] != 'disabled':
                put(s, {'status': 'disabled',
                        'disabled_reason': 'devcloud: other compute mode'})
                print('disabled nova-compute on %s (forced down)'
                      % s['host'])


def keystone_remove(endpoint_id):
    """Delete the catalog service of an endpoint, with its endpoints."""
    idn = admin().identity
    endpoint = idn.find_endpoint(endpoint_id)
    if endpoint is None:
        return
    svc = idn.get_service(endpoint.service_id)
    for e in list(idn.endpoints(service_id=svc.id)):
        idn.delete_endpoint(e)
    idn.delete_service(svc)
    print('removed %s (%s) from the catalog' % (svc.name, svc.type))


def flavors(spec):
    """Create the public flavors {name: (vcpus, ram MB, disk GB)}."""
    c = admin()
    for name, (vcpus, ram, disk) in spec.items():
        if not c.compute.find_flavor(name):
            c.compute.create_flavor(
                name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True
            )
    print('flavors', sorted(spec))


def leaks():
    c = admin()
    out = {
        'servers': [
            (s.id, s.name, s.status)
            for s in c.compute.servers(all_projects=True)
        ],
        'images': [(i.id, i.name, i.status) for i in c.image.images()],
        'allocations': {},
    }
    for rp in c.placement.get(
        '/resource_providers', microversion='1.39'
    ).json()['resource_providers']:
        a = c.placement.get(
            '/resource_providers/%s/allocations' % rp['uuid'],
            microversion='1.39',
        ).json()['allocations']
        if a:
            out['allocations'][rp['name']] = list(a)
    print(json.dumps(out, indent=2))


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'keystone-init':
        keystone_init(json.loads(sys.argv[2]))
    elif cmd == 'wait-nova':
        wait_nova(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]),
                  sys.argv[5])
    elif cmd == 'compute-services':
        prepare = sys.argv[2] == '--prepare'
        args = sys.argv[3:] if prepare else sys.argv[2:]
        compute_services(args[0], args[1:], prepare=prepare)
    elif cmd == 'keystone-remove':
        keystone_remove(sys.argv[2])
    elif cmd == 'flavors':
        flavors(json.loads(sys.argv[2]))
    elif cmd == 'leaks':
        leaks()
    else:
        raise SystemExit(__doc__)
