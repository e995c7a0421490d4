#!/usr/bin/env python3
"""Peer for kube_bench: reads a watch stream with Python's http.client and prints
"<events> <seconds from first to last event>". With --decode each event is json.loads'ed.
  watch_peer.py SERVER CA CERT KEY PATH COUNT [--decode]"""
import http.client
import json
import ssl
import sys
import time
import urllib.parse

server, ca, cert, key, path, count = sys.argv[1:7]
decode = "--decode" in sys.argv[7:]
count = int(count)
url = urllib.parse.urlparse(server)
context = ssl.create_default_context(cafile=ca)
context.load_cert_chain(cert, key)
connection = http.client.HTTPSConnection(url.hostname, url.port, context=context)
connection.request("GET", path)
response = connection.getresponse()
events, first = 0, None
while events < count:
    line = response.readline()
    if not line:
        break
    if first is None:
        first = time.perf_counter()
    if decode:
        json.loads(line)
    events += 1
print(events, time.perf_counter() - first if first else 0.0)
