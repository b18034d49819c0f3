"""The code that runs *inside* the sandbox; everything else in `retinue.sandbox` runs on the host.

    session.py      the REPL server, started as ``python -I -S session.py CONFIG_JSON`` (bound read-only at
                    /run/retinue/session.py)
    host_client.py  the template of the host-API module that sandboxed code imports (``import host_api``)

Neither is imported on the host: the host binds or copies the files into the sandbox (`Sandbox` starts the
session, `host_bridge` writes the module), where they run as scripts, outside any package. So they import the
standard library and nothing else: not `retinue`, which is host code and would add its imports to every cold
start; not each other; not a third-party package. `tests/test_import_graph.py` holds them to it.
"""
