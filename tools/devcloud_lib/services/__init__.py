"""The services of the devcloud, one module each (devstack's lib/<service>).

Each module defines one ``base.Service`` subclass and an instance of it,
``SERVICE``; ``devcloud.py`` lists them in start order and calls their
verbs (install, configure, init, start, check, stop, clean, status). See
base.py for what each verb does and README.rst ("Adding a service").
"""
