#!/usr/bin/env python3
"""lazyfs.py: a FUSE pass-through file system that simulates power loss (like
LazyFS, which Jepsen uses). Tests mount it, run Missive's SQLite store on it, pull
the plug, and then check what survived in the backing directory.

Usage:  python3 lazyfs.py BACKING_DIR MOUNT_DIR   (run as root: /dev/fuse, mount(2))
  It prints "mounted" once the mount is live. SIGUSR1 is the power cut: every
  unsynced change is dropped, every later operation fails with EIO, and it prints
  "cut". SIGTERM/SIGINT/SIGHUP are a power cut too: pending data is discarded,
  NOT written. The mount is then lazily detached and the process exits 0. After
  a SIGKILL, clear the mount point with `umount -l MOUNT_DIR` (or `fusermount3 -u`).

What this module owns, and why:
  * Metadata passes straight through: create, mkdir, unlink, rename, chmod,
    utimens, links. It is never lost. A real fs can lose an unsynced create;
    this one is lenient about that.
  * Data is held back. write()/truncate() go into an in-memory overlay for each
    backing inode (4 KiB pages plus a logical size). read() and getattr() show
    the logical content. fsync/fdatasync of a file writes the net effect of that
    file's pending changes into the backing file and os.fsyncs it. close
    (flush/release) persists nothing, as with a real page cache. O_SYNC/O_DSYNC
    writes are synced at once. Because the key is the inode, rename carries the
    pending data along. An inode with no links and no open handles left loses it.
    libfuse renames files that are unlinked while open to .fuse_hidden*, and
    removes them on close, even after a cut.
  * One lock serializes all operations. Locking (fcntl/flock) is left to the
    kernel, which handles it locally.
Kernel cache: direct_io stays off, because SQLite WAL mmaps "-shm" MAP_SHARED.
There is no kernel_cache, so each open() drops cached pages and reads come
through here. Writeback cache is off (the libfuse3 default), so each write()
reaches us at once. Attribute and entry timeouts stay at libfuse's 1 s.
"""
import ctypes, errno, functools, os, signal, sys, threading, time

os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")
from mfusepy import FUSE, FuseOSError, Operations, fuse_get_context  # noqa: E402

PAGE = 4096


class Pending:
    """Unsynced changes of one inode: overlay pages, logical size, and a floor.
    Backing bytes at or beyond `floor` count as zero (they were truncated away).
    Invariants: floor <= size, and overlay bytes beyond size are zero."""

    def __init__(self, size):
        self.size = self.floor = size
        self.pages = {}

    def _page(self, fd, idx):
        if idx in self.pages:
            return self.pages[idx]
        base = os.pread(fd, PAGE, idx * PAGE)[: max(0, self.floor - idx * PAGE)]
        return bytearray(base.ljust(PAGE, b"\0"))

    def read(self, fd, off, n):
        end = min(off + n, self.size)
        out = bytearray()
        for idx in range(off // PAGE, (end + PAGE - 1) // PAGE):
            out += self._page(fd, idx)
        start = off - (off // PAGE) * PAGE
        return bytes(out[start : start + max(0, end - off)])

    def write(self, fd, off, data):
        pos = 0
        while pos < len(data):
            idx, inpage = divmod(off + pos, PAGE)
            chunk = data[pos : pos + PAGE - inpage]
            page = self.pages[idx] = self._page(fd, idx)
            page[inpage : inpage + len(chunk)] = chunk
            pos += len(chunk)
        if data:
            self.size = max(self.size, off + len(data))

    def truncate(self, length):
        if length < self.size:
            for idx in [i for i in self.pages if i * PAGE >= length]:
                del self.pages[idx]
            idx, inpage = divmod(length, PAGE)
            if idx in self.pages:
                self.pages[idx][inpage:] = bytes(PAGE - inpage)
            self.floor = min(self.floor, length)
        self.size = length

    def apply(self, fd):
        os.ftruncate(fd, min(self.floor, os.fstat(fd).st_size))
        for idx, page in sorted(self.pages.items()):
            os.pwrite(fd, page[: max(0, min(PAGE, self.size - idx * PAGE))], idx * PAGE)
        os.ftruncate(fd, self.size)
        os.fsync(fd)


def key(st):
    return (st.st_dev, st.st_ino)


def op(fn):
    """Serialize every operation under one lock, and fail with EIO after a cut. The one exception:
    libfuse may still remove its .fuse_hidden* files (unlinked while open), as a reboot would."""
    @functools.wraps(fn)
    def wrapper(self, *args):
        with self._mutex:
            if self._dead and not (fn.__name__ == "unlink" and "/.fuse_hidden" in args[0]):
                raise FuseOSError(errno.EIO)
            return fn(self, *args)
    return wrapper


class LazyFS(Operations):
    use_ns = True

    def __init__(self, root):
        self._root, self._mutex, self._dead = os.path.realpath(root), threading.RLock(), False
        self._pending = {}  # inode key -> Pending
        self._handles = {}  # fh (= our backing fd, always O_RDWR) -> [inode key, opened with O_SYNC/O_DSYNC]

    def _real(self, path):
        return self._root + path

    def _state(self, k, size):
        return self._pending.setdefault(k, Pending(size))

    def _gc(self, k, nlink):  # an inode with no links and no open handles left loses its pending data
        if nlink <= 0 and all(h[0] != k for h in self._handles.values()):
            self._pending.pop(k, None)

    def cut(self):
        with self._mutex:
            self._dead = True
            self._pending.clear()

    # ---- metadata: straight through to the backing dir ----
    @op
    def getattr(self, path, fh=None):
        st = os.lstat(self._real(path))
        attrs = {a: getattr(st, a) for a in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_blocks")}
        attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        if key(st) in self._pending:
            attrs["st_size"] = self._pending[key(st)].size
        return attrs

    @op
    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._real(path))

    @op
    def statfs(self, path):
        sv = os.statvfs(self._real(path))
        return {f: getattr(sv, f) for f in dir(sv) if f.startswith("f_")}

    @op
    def unlink(self, path):
        st = os.lstat(self._real(path))
        os.unlink(self._real(path))
        self._gc(key(st), st.st_nlink - 1)

    @op
    def rename(self, old, new):  # pending data is keyed by inode, so it moves along by itself
        src, dst = os.lstat(self._real(old)), os.path.lexists(self._real(new)) and os.lstat(self._real(new))
        os.rename(self._real(old), self._real(new))
        if dst and key(dst) != key(src):
            self._gc(key(dst), dst.st_nlink - 1)

    @op
    def utimens(self, path, times=None):  # mfusepy hands over UTIME_NOW/UTIME_OMIT as raw nanoseconds
        st, now = os.lstat(self._real(path)), time.time_ns()
        fix = lambda t, old: now if t == (1 << 30) - 1 else old if t == (1 << 30) - 2 else t
        times = times and (fix(times[0], st.st_atime_ns), fix(times[1], st.st_mtime_ns))
        os.utime(self._real(path), ns=times or (now, now))

    @op
    def fsyncdir(self, path, datasync, fh):
        fd = os.open(self._real(path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    readlink = op(lambda self, path: os.readlink(self._real(path)))
    @op
    def mkdir(self, path, mode):  # new entries belong to the caller, as on a real fs
        os.mkdir(self._real(path), mode)
        os.chown(self._real(path), *fuse_get_context()[:2])

    rmdir = op(lambda self, path: os.rmdir(self._real(path)))
    @op
    def symlink(self, target, source):
        os.symlink(source, self._real(target))
        os.chown(self._real(target), *fuse_get_context()[:2], follow_symlinks=False)

    link = op(lambda self, target, source: os.link(self._real(source), self._real(target)))
    chmod = op(lambda self, path, mode: os.chmod(self._real(path), mode))
    chown = op(lambda self, path, uid, gid: os.chown(self._real(path), uid, gid, follow_symlinks=False))

    # ---- data: held in memory until fsync ----
    def _open(self, path, flags, mode=0o666):
        strip = os.O_ACCMODE | os.O_TRUNC | os.O_APPEND | os.O_SYNC | os.O_DSYNC | os.O_DIRECT
        fd = os.open(self._real(path), (flags & ~strip) | os.O_RDWR | os.O_CLOEXEC, mode)
        st = os.fstat(fd)
        self._handles[fd] = [key(st), bool(flags & (os.O_SYNC | os.O_DSYNC))]
        if flags & os.O_TRUNC:
            self._state(key(st), st.st_size).truncate(0)
        return fd

    @op
    def open(self, path, flags):
        return self._open(path, flags)

    @op
    def create(self, path, mode, flags=os.O_WRONLY | os.O_TRUNC):
        fd = self._open(path, flags | os.O_CREAT, mode)
        os.fchown(fd, *fuse_get_context()[:2])
        return fd

    @op
    def read(self, path, size, offset, fh):
        p = self._pending.get(self._handles[fh][0])
        return p.read(fh, offset, size) if p else os.pread(fh, size, offset)

    @op
    def write(self, path, data, offset, fh):
        k, o_sync = self._handles[fh]
        p = self._pending.get(k) or self._state(k, os.fstat(fh).st_size)
        p.write(fh, offset, data)
        if o_sync:
            self._sync(fh)
        return len(data)

    @op
    def truncate(self, path, length, fh=None):  # mfusepy passes fh=None on libfuse3; the path is always valid
        st = os.fstat(fh) if fh is not None else os.stat(self._real(path))
        self._state(key(st), st.st_size).truncate(length)

    def _sync(self, fh):
        p = self._pending.pop(self._handles[fh][0], None)
        p.apply(fh) if p else os.fsync(fh)

    @op
    def fsync(self, path, datasync, fh):
        self._sync(fh)

    @op
    def flush(self, path, fh):
        return 0  # close() persists nothing

    def release(self, path, fh):  # no @op: always close the backing fd, even after a cut
        with self._mutex:
            k, nlink = self._handles.pop(fh)[0], os.fstat(fh).st_nlink
            os.close(fh)
            self._gc(k, nlink)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: lazyfs.py BACKING_DIR MOUNT_DIR")
    backing, mnt = sys.argv[1], os.path.realpath(sys.argv[2])
    if os.path.ismount(mnt) or not os.path.isdir(backing):
        sys.exit(f"lazyfs: {mnt} is already a mount point, or {backing} is not a directory")
    fs = LazyFS(backing)
    os.umask(0)  # the kernel has already applied the caller's umask to create/mkdir modes
    sigs = {signal.SIGUSR1, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)  # blocked in every thread; main takes them via sigtimedwait
    # max_idle_threads only silences a bogus libfuse 3.14.0 warning about max threads.
    opts = dict(foreground=True, fsname="lazyfs", max_idle_threads=8, allow_other=True)
    t = threading.Thread(target=FUSE, args=(fs, mnt), kwargs=opts, daemon=True)
    t.start()
    while not os.path.ismount(mnt):
        if not t.is_alive():
            sys.exit("lazyfs: mount failed")
        time.sleep(0.02)
    print("mounted", flush=True)
    while t.is_alive():
        info = signal.sigtimedwait(sigs, 0.5)
        if info is None:
            continue
        fs.cut()
        if info.si_signo == signal.SIGUSR1:
            print("cut", flush=True)
            continue
        # Exit is a power cut too. Detach lazily so MOUNT_DIR is usable at once.
        # The kernel drops the connection when the last open file goes away.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.umount2(mnt.encode(), 2)  # MNT_DETACH
        t.join(5)
        break
    sys.stdout.flush()
    os._exit(0)  # the FUSE thread may still hold C frames; skip interpreter teardown


if __name__ == "__main__":
    main()
