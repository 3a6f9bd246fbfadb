"""RabbitMQ: Nova's and Neutron's message bus (a shared system daemon).

If something listens on 127.0.0.1:5672, devcloud uses it and never stops
it; else it installs and starts rabbitmq-server (loopback only) and stops
it on ``down``. devcloud's own vhost and user are made once (``init``).
"""

import os
import shutil

import common
import proc
from services import base
from services import mariadb

USER, PASSWORD, VHOST = 'devcloud', 'devcloud-rabbit-secret', 'devcloud'
PORT = 5672
# what services put in [DEFAULT]transport_url
TRANSPORT_URL = 'rabbit://%s:%s@127.0.0.1:%d/%s' % (USER, PASSWORD, PORT,
                                                    VHOST)
# what services put in [oslo_messaging_rabbit], as deployments run it
# (kolla-ansible, OpenStack-Ansible): quorum queues, which outlive a
# restart of the broker, so that a message sent while a service reconnects
# waits in its queue instead of being routed to none and dropped (a lost
# call or cast leaves a server in its task state for ever); heartbeats on
# (oslo.messaging's default), so that a service sees a dead connection
# before it writes a message into it.
MESSAGING_CONF = """\
[oslo_messaging_rabbit]
rabbit_quorum_queue = true
"""
# the mark of a vhost made for quorum queues (one made before, with
# classic queues of the same names, cannot take them: it is made anew)
MARK = 'rabbit-quorum'


def rabbitmqctl(*args, check=True):
    return common.run(['rabbitmqctl', '-q'] + list(args), check=check)


class RabbitMQ(base.SharedDaemon):
    name = 'rabbitmq'
    port = PORT

    def install(self, c):
        if proc.tcp_open(PORT):
            return
        if not shutil.which('rabbitmq-server'):
            common.apt_install(['rabbitmq-server'])
        self.start(c)

    def start(self, c):
        if proc.tcp_open(PORT):
            return
        common.log('starting RabbitMQ (not running; devcloud will stop it '
                   'on down)')
        # loopback only, like the rest of the devcloud
        env = dict(os.environ, RABBITMQ_NODE_IP_ADDRESS='127.0.0.1',
                   ERL_EPMD_ADDRESS='127.0.0.1')
        common.run(['rabbitmq-server', '-detached'],
                   log_name='rabbitmq-start.log', env=env)
        proc.wait_for(lambda: proc.tcp_open(PORT), 120,
                      'RabbitMQ on 127.0.0.1:%d' % PORT, 0.5)
        self.record_started(proc.pid_listening(PORT))

    def init(self, c):
        """devcloud's vhost and user, once.

        A vhost of an older devcloud (classic queues) is deleted and made
        anew: the services would fail to declare their quorum queues under
        the same names (PRECONDITION_FAILED).
        """
        if c.done(MARK):
            return None
        if VHOST in rabbitmqctl('list_vhosts').stdout.split():
            rabbitmqctl('delete_vhost', VHOST)
        rabbitmqctl('add_vhost', VHOST)
        users = [
            line.split()[0]
            for line in rabbitmqctl('list_users').stdout.splitlines()
            if line.strip()
        ]
        if USER not in users:
            rabbitmqctl('add_user', USER, PASSWORD)
        else:
            rabbitmqctl('change_password', USER, PASSWORD)
        rabbitmqctl('set_permissions', '-p', VHOST, USER, '.*', '.*', '.*')
        c.mark(MARK)
        common.log('RabbitMQ: vhost %s, user %s' % (VHOST, USER))
        return None

    def before_stop(self):
        rabbitmqctl('shutdown', check=False)

    def clean(self, c):
        """Delete the vhost and user, if the databases are this checkout's.

        (Runs before mariadb's clean, which drops those databases.)
        """
        if proc.tcp_open(PORT) and mariadb.ours(c):
            rabbitmqctl('delete_vhost', VHOST, check=False)
            rabbitmqctl('delete_user', USER, check=False)
            common.log('RabbitMQ: deleted vhost %s and user %s'
                       % (VHOST, USER))


SERVICE = RabbitMQ()
