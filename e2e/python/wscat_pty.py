"""Drives the real wscat (e2e/node/node_modules/.bin/wscat) in a pseudo
terminal, as a user at its prompt: argv is wscat's own arguments. Each
line this script reads on stdin is typed at the prompt, once wscat has
printed "Connected"; each message wscat prints ("< {...}") is written to
stdout as one line, without the terminal's colours. "connected" goes to
stderr when wscat is connected; wscat's exit ends the script.
"""

import os
import pty
import re
import select
import sys

WSCAT = os.path.join(os.path.dirname(__file__), "..", "node", "node_modules", ".bin", "wscat")
ANSI = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")


def main():
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(WSCAT, ["wscat"] + sys.argv[1:])
    connected = False
    pending = b""
    typed = []
    stdin_open = True
    while True:
        watch = [fd] + ([sys.stdin.fileno()] if stdin_open else [])
        readable, _, _ = select.select(watch, [], [], 0.2)
        if fd in readable:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += ANSI.sub(b"", chunk)
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                line = line.replace(b"\r", b"").strip()
                if line.startswith(b"> "):
                    line = line[2:].strip()
                if b"Connected" in line and not connected:
                    connected = True
                    sys.stderr.write("connected\n")
                    sys.stderr.flush()
                    for t in typed:
                        os.write(fd, t + b"\r")
                    typed = []
                elif line.startswith(b"< "):
                    sys.stdout.write(line[2:].decode() + "\n")
                    sys.stdout.flush()
                elif line.startswith(b"error:") or line.startswith(b"Disconnected"):
                    sys.stderr.write(line.decode() + "\n")
                    sys.stderr.flush()
        if stdin_open and sys.stdin.fileno() in readable:
            data = os.read(sys.stdin.fileno(), 65536)
            if not data:
                stdin_open = False
                continue
            for t in data.splitlines():
                if connected:
                    os.write(fd, t + b"\r")
                else:
                    typed.append(t)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
