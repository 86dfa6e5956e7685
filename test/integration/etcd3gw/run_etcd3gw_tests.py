"""Runs the functional tests Debian's python3-etcd3gw ships against a server on
127.0.0.1:PORT instead of the hard-coded 127.0.0.1:2379 (a shared machine can
not promise that port). The installed test module is loaded from its source
with only that address changed; nothing else in it is touched.

Usage: python3 run_etcd3gw_tests.py PORT
Prints one line per test (name: ok|FAIL|ERROR|skip) and a JSON summary last.
"""
import importlib.util
import json
import sys
import unittest

port = int(sys.argv[1])

import etcd3gw.client  # noqa: E402
client_mod = sys.modules['etcd3gw.client']
import etcd3gw.tests.test_etcd3gw  # noqa: E402  (find the file)
_located = sys.modules['etcd3gw.tests.test_etcd3gw']

# Etcd3Client() in the tests uses its defaults: point them at our port.
defaults = list(client_mod.Etcd3Client.__init__.__defaults__)
defaults[1] = port  # (host, port, protocol, ...)
defaults[0] = '127.0.0.1'
client_mod.Etcd3Client.__init__.__defaults__ = tuple(defaults)

path = _located.__file__
src = open(path, encoding='utf-8').read()
if '127.0.0.1:2379' not in src:
    raise SystemExit('etcd3gw test module changed: probe address not found')
src = src.replace('127.0.0.1:2379', '127.0.0.1:%d' % port)
spec = importlib.util.spec_from_loader('etcd3gw_functional', loader=None)
mod = importlib.util.module_from_spec(spec)
mod.__file__ = path
exec(compile(src, path, 'exec'), mod.__dict__)

suite = unittest.defaultTestLoader.loadTestsFromModule(mod)


class Result(unittest.TextTestResult):
    pass


runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=Result)
result = runner.run(suite)
summary = {
    'run': result.testsRun,
    'failures': [t.id() for t, _ in result.failures],
    'errors': [t.id() for t, _ in result.errors],
    'skipped': [t.id() for t, _ in result.skipped],
}
summary['passed'] = summary['run'] - len(summary['failures']) - len(summary['errors']) - len(summary['skipped'])
print('ETCD3GW-SUMMARY ' + json.dumps(summary))
