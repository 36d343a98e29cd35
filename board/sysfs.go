package board

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// maxAttrSize bounds every sysfs/procfs read: attributes are one page, and a
// bug-report fixture must not make detection read a huge file.
const maxAttrSize = 256 << 10

// fsys reads the system under a root directory ("/" on a live box, a
// fixture or snapshot folder otherwise). Paths are system paths
// ("/sys/class/video4linux"). Symlinks are resolved here, inside the root,
// so that absolute links in a fixture (/proc/device-tree ->
// /sys/firmware/devicetree/base) never escape to the host.
type fsys struct {
	root string
	rec  *recorder // non-nil while taking a snapshot
}

func newFsys(root string) fsys {
	if root == "" {
		root = "/"
	}
	return fsys{root: filepath.Clean(root)}
}

// live reports whether the root is the running system.
func (f fsys) live() bool { return f.root == "/" }

func (f fsys) host(p string) string { return filepath.Join(f.root, filepath.FromSlash(p)) }

// resolve returns p with every symlink resolved, as a system path.
func (f fsys) resolve(p string) (string, error) {
	p = path.Clean("/" + p)
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	links := 0
	for i := 0; i < len(parts); i++ {
		if parts[i] == "" || parts[i] == "." {
			continue
		}
		if parts[i] == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, parts[i])
		fi, err := os.Lstat(f.host(next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		links++
		if links > 40 {
			return "", &fs.PathError{Op: "resolve", Path: p, Err: errors.New("too many levels of symbolic links")}
		}
		target, err := os.Readlink(f.host(next))
		if err != nil {
			return "", err
		}
		f.rec.link(next, target)
		rest := parts[i+1:]
		if path.IsAbs(target) {
			cur = "/"
		}
		parts = append(strings.Split(strings.Trim(target, "/"), "/"), rest...)
		i = -1
	}
	return cur, nil
}

// readFile reads a whole (small) file.
func (f fsys) readFile(p string) ([]byte, error) {
	real, err := f.resolve(p)
	if err != nil {
		return nil, err
	}
	fh, err := os.Open(f.host(real))
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxAttrSize))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: p, Err: err}
	}
	f.rec.file(p, b)
	return b, nil
}

// readString reads a text attribute without surrounding whitespace and NULs
// (device-tree strings end in NUL).
func (f fsys) readString(p string) (string, error) {
	b, err := f.readFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(strings.Trim(string(b), "\x00")), nil
}

// readInt reads an integer attribute (decimal, or hex with 0x).
func (f fsys) readInt(p string) (int64, error) {
	s, err := f.readString(p)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	return v, nil
}

// readDir lists a directory (following symlinks to it), sorted by name.
func (f fsys) readDir(p string) ([]fs.DirEntry, error) {
	real, err := f.resolve(p)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(f.host(real))
	if err != nil {
		return nil, err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	f.rec.dir(p, real, ents)
	return ents, nil
}

// readlink returns a symlink's target without following it.
func (f fsys) readlink(p string) (string, error) {
	real, err := f.resolve(path.Dir(p))
	if err != nil {
		return "", err
	}
	t, err := os.Readlink(f.host(path.Join(real, path.Base(p))))
	if err != nil {
		return "", err
	}
	f.rec.link(path.Join(real, path.Base(p)), t)
	return t, nil
}

// linkBase is the last element of a symlink's target (a driver or
// subsystem name), or "".
func (f fsys) linkBase(p string) string {
	t, err := f.readlink(p)
	if err != nil {
		return ""
	}
	return path.Base(t)
}

// exists reports whether p exists (following symlinks).
func (f fsys) exists(p string) bool {
	real, err := f.resolve(p)
	if err != nil {
		return false
	}
	fi, err := os.Stat(f.host(real))
	if err != nil {
		return false
	}
	f.rec.node(p, real, fi)
	return true
}

// recorder remembers what detection read, so that a snapshot holds exactly
// those files (and the symlinks and directories on the way to them).
type recorder struct {
	mu    sync.Mutex
	files map[string][]byte    // system path -> content as read
	links map[string]string    // resolved link path -> target
	dirs  map[string][]dirItem // system path -> entries
	nodes map[string]fs.FileMode
}

type dirItem struct {
	name string
	mode fs.FileMode
}

func newRecorder() *recorder {
	return &recorder{files: map[string][]byte{}, links: map[string]string{}, dirs: map[string][]dirItem{}, nodes: map[string]fs.FileMode{}}
}

func (r *recorder) file(p string, b []byte) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files[p] = bytes.Clone(b)
}

func (r *recorder) link(p, target string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.links[p] = target
}

func (r *recorder) dir(p, real string, ents []fs.DirEntry) {
	if r == nil {
		return
	}
	items := make([]dirItem, 0, len(ents))
	for _, e := range ents {
		items = append(items, dirItem{e.Name(), e.Type()})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dirs[real] = items
	r.nodes[p] = fs.ModeDir
}

func (r *recorder) node(p, real string, fi fs.FileInfo) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nodes[real] = fi.Mode()
}

// writeTo replicates everything recorded under dir. Device nodes become
// empty regular files (a fixture only needs them to exist); symlinks keep
// their original targets, which fsys resolves inside the root.
func (r *recorder) writeTo(src fsys, dir string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	dst := newFsys(dir)
	var errs []error
	mk := func(p string) {
		if err := mkParents(src, dst, p); err != nil {
			errs = append(errs, err)
		}
	}
	for p, t := range r.links {
		mk(path.Dir(p))
		h := dst.host(p)
		if _, err := os.Lstat(h); err == nil {
			continue
		}
		if err := os.Symlink(t, h); err != nil {
			errs = append(errs, err)
		}
	}
	for real, items := range r.dirs {
		mk(real)
		rd, err := src.resolve(real)
		if err == nil {
			if err := mkParents(src, dst, rd); err != nil {
				errs = append(errs, err)
			}
		}
		for _, it := range items {
			child := path.Join(real, it.name)
			h := dst.host(child)
			if _, err := os.Lstat(h); err == nil {
				continue
			}
			switch {
			case it.mode&fs.ModeSymlink != 0:
				if t, err := os.Readlink(src.host(child)); err == nil {
					_ = os.Symlink(t, h)
				}
			case it.mode.IsDir():
				_ = os.MkdirAll(h, 0o755)
			}
		}
	}
	for p, m := range r.nodes {
		if m.IsDir() {
			continue
		}
		real, err := src.resolve(p)
		if err != nil {
			continue
		}
		mk(path.Dir(real))
		h := dst.host(real)
		if _, err := os.Lstat(h); err == nil {
			continue
		}
		if f, err := os.Create(h); err == nil {
			f.Close()
		}
	}
	for p, b := range r.files {
		real, err := src.resolve(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		mk(path.Dir(real))
		if err := os.WriteFile(dst.host(real), b, 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// mkParents creates system path p (a directory) under dst, replicating any
// symlink met on the way in src.
func mkParents(src, dst fsys, p string) error {
	parts := strings.Split(strings.Trim(path.Clean(p), "/"), "/")
	cur := "/"
	for _, part := range parts {
		if part == "" {
			continue
		}
		next := path.Join(cur, part)
		fi, err := os.Lstat(src.host(next))
		if err != nil {
			return nil // gone meanwhile; nothing to replicate
		}
		h := dst.host(next)
		if fi.Mode()&fs.ModeSymlink != 0 {
			t, err := os.Readlink(src.host(next))
			if err != nil {
				return err
			}
			if _, err := os.Lstat(h); err != nil {
				if err := os.MkdirAll(filepath.Dir(h), 0o755); err != nil {
					return err
				}
				if err := os.Symlink(t, h); err != nil {
					return err
				}
			}
			real, err := src.resolve(next)
			if err != nil {
				return err
			}
			if err := mkParents(src, dst, real); err != nil {
				return err
			}
			cur = real
			continue
		}
		if err := os.MkdirAll(h, 0o755); err != nil {
			return err
		}
		cur = next
	}
	return nil
}
