"""Runs a command on a real pseudo-terminal, answers a prompt, and reports what happened as JSON.

usage: pty-run.py WAIT_FOR ANSWER TIMEOUT_S -- ARGV...
  WAIT_FOR   text to wait for in the output before answering
  ANSWER     bytes to type (Python escapes: "yes\\r", "\\x04" for EOF, "\\x03" for Ctrl-C), or "" for none
  TIMEOUT_S  upper bound for the whole run; the child is killed after it
Prints {"output": ..., "status": exit status or null, "timedOut": bool, "answeredAfter": seconds}.
"""
import codecs, json, os, pty, select, signal, sys, time

wait_for, answer, limit = sys.argv[1], codecs.decode(sys.argv[2], 'unicode_escape'), float(sys.argv[3])
argv = sys.argv[sys.argv.index('--') + 1:]
start = time.monotonic()
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
output, answered_after, timed_out = b'', None, False
while True:
    if time.monotonic() - start > limit:
        timed_out = True
        os.kill(pid, signal.SIGKILL)
        break
    ready, _, _ = select.select([fd], [], [], 0.1)
    if ready:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    if answered_after is None and wait_for.encode() in output:
        answered_after = time.monotonic() - start
        if answer:
            time.sleep(0.2)
            os.write(fd, answer.encode())
_, status = os.waitpid(pid, 0)
print(json.dumps({
    'output': output.decode('utf8', 'replace'),
    'status': os.waitstatus_to_exitcode(status),
    'timedOut': timed_out,
    'answeredAfter': answered_after,
}))
