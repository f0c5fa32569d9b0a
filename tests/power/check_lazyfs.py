#!/usr/bin/env python3
"""Self-check for lazyfs.py. It uses real processes and a real FUSE mount in a temp dir.

Run as root with a Python that has mfusepy installed (see requirements.txt):
    python3 tests/power/check_lazyfs.py [--rows N]

1. Plain files: fsynced data survives a cut and unsynced data is lost. Before
   the cut, reads see the pending data. Rename carries pending data along,
   unlink throws it away, and after a cut every operation fails with EIO.
2. SQLite in WAL mode (-shm shared mmap) with a writer process and a reader
   process. With synchronous=FULL every acknowledged commit survives the cut
   and integrity_check is ok. With synchronous=OFF acknowledged rows are lost,
   which shows that the layer really drops unsynced data.
Prints a summary and exits non-zero if any check failed.
"""
import errno, os, queue, shutil, signal, sqlite3, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else ""), flush=True)


def lines_of(proc):
    """Read a process's stdout lines into a queue from a background thread."""
    q = queue.Queue()
    threading.Thread(target=lambda: [q.put(l.rstrip("\n")) for l in proc.stdout] + [q.put(None)], daemon=True).start()
    return q


def expect(q, want, timeout=20):
    line = q.get(timeout=timeout)
    if line != want:
        raise RuntimeError(f"expected {want!r}, got {line!r}")


class Lazy:
    """One lazyfs process over <tmp>/backing mounted at <tmp>/mnt."""

    def __init__(self, tmp):
        self.backing, self.mnt = os.path.join(tmp, "backing"), os.path.join(tmp, "mnt")
        os.makedirs(self.backing), os.makedirs(self.mnt)
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "lazyfs.py"), self.backing, self.mnt],
                                     stdout=subprocess.PIPE, text=True)
        self.out = lines_of(self.proc)
        expect(self.out, "mounted")

    def cut(self):
        self.proc.send_signal(signal.SIGUSR1)
        expect(self.out, "cut")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill(), self.proc.wait()
            rc = "timeout"
        if os.path.ismount(self.mnt):
            subprocess.run(["umount", "-l", self.mnt])
            rc = f"{rc}, left mounted"
        return rc


def read_fresh(path):  # a separate process with a fresh open(), so the read goes through lazyfs
    return subprocess.run(["cat", path], capture_output=True).stdout


def write(path, data, sync, trunc=True, keep=False):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | (os.O_TRUNC if trunc else os.O_APPEND), 0o644)
    os.write(fd, data)
    if sync:
        os.fsync(fd)
    return fd if keep else os.close(fd)


def test_files(tmp):
    fs = Lazy(tmp)
    m, b = fs.mnt, fs.backing
    try:
        write(f"{m}/a", b"durable-A", sync=True)
        write(f"{m}/b", b"old-B", sync=True)
        write(f"{m}/b", b"+new-B", sync=False, trunc=False)
        write(f"{m}/c", b"never synced", sync=False)
        write(f"{m}/d", b"D" * 10000, sync=True)
        fd = os.open(f"{m}/d", os.O_RDWR); os.ftruncate(fd, 100); os.close(fd)
        write(f"{m}/e", b"moved then synced", sync=False)
        os.rename(f"{m}/e", f"{m}/e2")
        write(f"{m}/f", b"doomed", sync=False)
        os.unlink(f"{m}/f")
        write(f"{m}/f", b"", sync=False)
        check("reads before cut see pending data",
              read_fresh(f"{m}/b") == b"old-B+new-B" and read_fresh(f"{m}/c") == b"never synced"
              and read_fresh(f"{m}/d") == b"D" * 100 and read_fresh(f"{m}/e2") == b"moved then synced")
        check("getattr reports logical size", os.stat(f"{m}/b").st_size == 11 and os.stat(f"{m}/d").st_size == 100)
        check("backing untouched before fsync", open(f"{b}/b", "rb").read() == b"old-B"
              and os.path.getsize(f"{b}/c") == 0 and os.path.getsize(f"{b}/d") == 10000)
        check("unlink discards pending data", read_fresh(f"{m}/f") == b"")
        fd = os.open(f"{m}/tmpfile", os.O_CREAT | os.O_RDWR)  # unlink-while-open, as SQLite temp files do
        os.write(fd, b"still readable"); os.unlink(f"{m}/tmpfile")
        alive = os.pread(fd, 100, 0) == b"still readable" and os.fstat(fd).st_size == 14
        os.close(fd)
        for _ in range(100):  # release (and libfuse's removal of .fuse_hidden*) is asynchronous to close
            if sorted(os.listdir(b)) == ["a", "b", "c", "d", "e2", "f"]:
                break
            time.sleep(0.02)
        check("unlinked open file keeps its data until close, leaves nothing behind",
              alive and sorted(os.listdir(b)) == sorted(os.listdir(m)) == ["a", "b", "c", "d", "e2", "f"])
        fd = os.open(f"{m}/e2", os.O_RDONLY); os.fsync(fd); os.close(fd)  # new fd, after the writer closed
        check("rename carries pending data, fsync on a new fd persists it",
              open(f"{b}/e2", "rb").read() == b"moved then synced")
        held = write(f"{m}/g", b"held open", sync=False, keep=True)
        fs.cut()
        errs = []
        for fn in (lambda: os.stat(f"{m}/a"), lambda: os.write(held, b"x"), lambda: os.fsync(held),
                   lambda: os.listdir(m), lambda: open(f"{m}/new", "w")):
            try:
                fn()
                errs.append("ok")
            except OSError as e:
                errs.append(errno.errorcode.get(e.errno, e.errno))
        check("after cut every operation fails with EIO", set(errs) == {"EIO"}, ",".join(errs))
        try:
            os.close(held)
        except OSError:
            pass
    finally:
        rc = fs.stop()
    check("SIGTERM unmounts and exits 0", rc == 0, f"rc={rc}")
    got = {n: open(f"{b}/{n}", "rb").read() for n in ("a", "b", "c", "d", "e2", "g")}
    check("fsynced data survives cut", got["a"] == b"durable-A" and got["e2"] == b"moved then synced")
    check("unsynced data lost (backing shows old content)",
          got["b"] == b"old-B" and got["c"] == b"" and got["d"] == b"D" * 10000 and got["g"] == b"", repr(got["b"]))


WRITER = r"""
import sqlite3, sys
db, sync = sys.argv[1], sys.argv[2]
con = sqlite3.connect(db, isolation_level=None)  # autocommit: every INSERT is its own transaction
con.execute("PRAGMA journal_mode=WAL"); con.execute("PRAGMA synchronous=FULL")
con.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
con.execute(f"PRAGMA synchronous={sync}")
con.execute("SELECT count(*) FROM t").fetchone()
print("ready", int("-shm" in open("/proc/self/maps").read()), flush=True)  # 1 if db-shm is mmapped
for i in range(10**7):
    con.execute("INSERT INTO t VALUES (?, ?)", (i, "x" * 200))
    print(i, flush=True)  # printed only after the commit returned: acknowledged
"""
READER = r"""
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
while True:
    print(con.execute("SELECT count(*) FROM t").fetchone()[0], flush=True); time.sleep(0.05)
"""


def test_sqlite(tmp, sync, rows):
    fs = Lazy(tmp)
    db = os.path.join(fs.mnt, "test.db")
    acked, seen, shm = [], [], None
    writer = subprocess.Popen([sys.executable, "-c", WRITER, db, sync], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    wq = lines_of(writer)
    reader = None
    try:
        ready = wq.get(timeout=30)
        shm = ready == "ready 1"
        reader = subprocess.Popen([sys.executable, "-c", READER, db], stdout=subprocess.PIPE, text=True)
        rq = lines_of(reader)
        first = rq.get(timeout=30)  # the reader has opened the database and read once
        if first is not None and first.isdigit():
            seen.append(int(first))
        t0, deadline = time.time(), time.time() + 120
        while len(acked) < rows and time.time() < deadline:
            line = wq.get(timeout=30)
            if line is None:
                break
            acked.append(int(line))
        elapsed = time.time() - t0
        fs.cut()  # power cut while the writer is mid-stream; it should die on its next commit
        writer.wait(5)
    finally:
        for p in (writer, reader):
            if p:
                p.kill(), p.wait()
    while (line := wq.get(timeout=10)) is not None:  # acks that were still in the pipe
        if line.isdigit():
            acked.append(int(line))
    while (line := rq.get(timeout=10)) is not None:
        if line.isdigit():
            seen.append(int(line))
    err = (writer.stderr.read().strip().splitlines() or ["(no error)"])[-1]
    rc = fs.stop()
    con = sqlite3.connect(os.path.join(fs.backing, "test.db"))
    integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    kept = {r[0] for r in con.execute("SELECT id FROM t")}
    con.close()
    lost = sorted(set(acked) - kept)
    print(f"      synchronous={sync}: acknowledged={len(acked)} kept={len(kept)} lost={len(lost)} "
          f"rate={len(acked) / max(elapsed, 1e-9):.0f} commits/s, reader saw up to {max(seen, default=0)} rows")
    check(f"[{sync}] db-shm is mmapped by the writer, concurrent reader works", shm and len(seen) > 0)
    check(f"[{sync}] writer fails with an I/O error after the cut", "disk I/O error" in err, err)
    check(f"[{sync}] lazyfs stopped cleanly", rc == 0, f"rc={rc}")
    check(f"[{sync}] integrity_check ok after cut", integrity == "ok", integrity)
    if sync == "FULL":
        check("[FULL] every acknowledged commit survives the cut", acked and not lost,
              f"first lost: {lost[:5]}" if lost else "")
    else:
        check("[OFF] acknowledged commits are lost (layer drops unsynced data)", len(lost) > 0)
    return len(acked), len(kept)


def main():
    rows = int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else 3000
    if os.geteuid() != 0:
        sys.exit("check_lazyfs.py must run as root (FUSE mount)")
    base = tempfile.mkdtemp(prefix="lazyfs-check-")
    try:
        for name, fn in (("files", test_files), ("FULL", lambda t: test_sqlite(t, "FULL", rows)),
                         ("OFF", lambda t: test_sqlite(t, "OFF", rows))):
            tmp = os.path.join(base, name)
            try:
                fn(tmp)
            except Exception as e:  # a crashed scenario is a failure, not a traceback that hides the rest
                check(f"{name} scenario ran", False, repr(e))
    finally:
        for name in os.listdir(base):
            if os.path.ismount(os.path.join(base, name, "mnt")):
                subprocess.run(["umount", "-l", os.path.join(base, name, "mnt")])
        shutil.rmtree(base, ignore_errors=True)
    passed = sum(results)
    print(f"lazyfs: {passed} passed, {len(results) - passed} failed")
    sys.exit(0 if results and all(results) else 1)


if __name__ == "__main__":
    main()
