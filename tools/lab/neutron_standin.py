"""A STAND-IN for neutron-server in the fastboot.cloud lab: this is NOT Neutron.

Nova asks the network service about ports, security groups and quotas even for servers created with
``networks='none'``; the lab's all-in-one has no Neutron, so this small HTTP server answers on
127.0.0.1:9696 (the catalog's ``network`` endpoint) the read calls Nova makes for NIC-less servers with
empty collections, and refuses every write (501). Servers with networks cannot be created in the lab.
Every request is logged to stderr. Started and stopped by tools/lab/openstack.sh; run with Debian's python3.
"""
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BIND = ('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 9696)
QUOTA_KEYS = ('port', 'network', 'subnet', 'security_group', 'security_group_rule', 'floatingip', 'router')
COLLECTION = re.compile(r'^/v2\.0/([a-z_-]+)(\.json)?$')
QUOTA = re.compile(r'^/v2\.0/quotas/[^/]+(/details)?(\.json)?$')


def _error(kind, message):
    return {'NeutronError': {'type': kind, 'message': 'neutron stand-in: ' + message, 'detail': ''}}


class Handler(BaseHTTPRequestHandler):
    """Answers GETs of collections with empty lists; everything else is refused."""

    protocol_version = 'HTTP/1.1'
    server_version = 'fastboot-neutron-standin/1'

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drain(self):
        length = int(self.headers.get('Content-Length') or 0)
        if length:
            self.rfile.read(length)

    def do_GET(self):  # pylint: disable=invalid-name
        """Version document, empty collections, unlimited quotas."""
        path = self.path.split('?', 1)[0].rstrip('/')
        if path == '':
            link = 'http://%s:%d/v2.0/' % BIND
            return self._send(200, {'versions': [{'id': 'v2.0', 'status': 'CURRENT',
                                                  'links': [{'rel': 'self', 'href': link}]}]})
        if path == '/v2.0':
            return self._send(200, {'resources': []})
        if path == '/v2.0/extensions':
            return self._send(200, {'extensions': []})
        if QUOTA.match(path):
            return self._send(200, {'quota': dict((key, -1) for key in QUOTA_KEYS)})
        match = COLLECTION.match(path)
        if match:
            return self._send(200, {match.group(1).replace('-', '_'): []})
        return self._send(404, _error('NotFound', path))

    def do_POST(self):  # pylint: disable=invalid-name
        """No writes: the lab's servers have no NICs."""
        self._drain()
        return self._send(501, _error('NotImplemented', 'no writes (this is not neutron)'))

    do_PUT = do_POST

    def do_DELETE(self):  # pylint: disable=invalid-name
        """Nothing exists, so nothing can be deleted."""
        return self._send(404, _error('NotFound', self.path))

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        sys.stderr.write('neutron-standin %s\n' % (format % args))
        sys.stderr.flush()


def main():
    ThreadingHTTPServer(BIND, Handler).serve_forever()


if __name__ == '__main__':
    main()
