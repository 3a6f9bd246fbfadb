"""nova-compute with devcloud's out-of-tree fake driver (fakevirt.py).

nova.virt.driver.load_compute_driver() imports 'nova.virt.' + compute_driver,
so the module is registered as nova.virt.devcloud_fake before the stock
nova-compute entry point runs ([DEFAULT]compute_driver =
devcloud_fake.DevcloudFakeDriver). Run with the service venv's python.
"""

import os
import sys

from nova.cmd import compute  # first: applies nova's threading/eventlet choice

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakevirt  # noqa: E402

sys.modules['nova.virt.devcloud_fake'] = fakevirt

if __name__ == '__main__':
    sys.exit(compute.main())
