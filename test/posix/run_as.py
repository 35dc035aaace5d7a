# Runs a snippet of Python as another user: the POSIX conformance suite's way to make system
# calls with the credentials a rule is about. argv[1] is JSON: uid, gid, groups (supplementary),
# cwd, code. The snippet sees `os`, `socket`, `stat` and sets `result`; stdout gets one JSON
# line: {"ok": true, "result": ...} or {"ok": false, "errno": "EPERM"}.
import errno
import json
import os
import socket
import stat
import sys

request = json.loads(sys.argv[1])
if request["uid"] is not None:
    # Groups first: once the uid is not 0, setgroups and setgid are no longer allowed.
    os.setgroups(request["groups"])
    os.setgid(request["gid"])
    os.setuid(request["uid"])
os.umask(request["umask"])
os.chdir(request["cwd"])
scope = {"os": os, "socket": socket, "stat": stat, "result": None}
try:
    exec(request["code"], scope)
    print(json.dumps({"ok": True, "result": scope["result"]}))
except OSError as e:
    print(json.dumps({"ok": False, "errno": errno.errorcode.get(e.errno, str(e.errno))}))
