package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// ErrDataDirUnreachable means that the OS user that runs PostgreSQL cannot
// reach the cluster folder because a folder above it is not traversable.
var ErrDataDirUnreachable = errors.New("pgcluster: data folder not reachable by the PostgreSQL user")

// serverUser is the OS user the server runs as when this process is root.
const serverUser = "postgres"

// account is the OS user that owns the cluster's files and runs its
// programs.
type account struct {
	name string
	uid  int
	gid  int
	// cred is nil when the programs run as the current user.
	cred *syscall.Credential
}

// serverAccount returns the OS user that runs PostgreSQL: "postgres" when
// this process is root (PostgreSQL refuses to run as root), else the current
// user.
func serverAccount() (account, error) {
	if os.Geteuid() != 0 {
		name := strconv.Itoa(os.Geteuid())
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		return account{name: name, uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup(serverUser)
	if err != nil {
		return account{}, fmt.Errorf("pgcluster: running as root, so PostgreSQL must run as the OS user %q, but it was not found "+
			"(install PostgreSQL, e.g. apt-get install postgresql, which creates it): %w", serverUser, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return account{}, fmt.Errorf("pgcluster: user %q has uid %q: %w", serverUser, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return account{}, fmt.Errorf("pgcluster: user %q has gid %q: %w", serverUser, u.Gid, err)
	}
	return account{
		name: serverUser,
		uid:  uid,
		gid:  gid,
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
	}, nil
}

// switches reports whether the programs run as another user than this
// process.
func (a account) switches() bool { return a.cred != nil }

// canTraverse reports whether a may enter the folder described by fi. Only
// the primary group counts, because the programs run with no supplementary
// groups; ACLs are not considered.
func (a account) canTraverse(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case int(st.Uid) == a.uid:
		return perm&0o100 != 0
	case int(st.Gid) == a.gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

// checkReachable returns an error wrapping [ErrDataDirUnreachable] naming the
// first folder above dir (an absolute path) that a cannot traverse.
func (a account) checkReachable(dir string) error {
	if !a.switches() {
		// This process created or opened dir as the same user.
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgcluster: stat %s: %w", p, err)
		}
		if !a.canTraverse(fi) {
			return fmt.Errorf("%w: PostgreSQL runs as the OS user %q, which cannot enter %s (mode %04o), a parent of %s; "+
				"choose a BRIDGE_DATA_DIR the %s user can reach (every folder above it needs o+x), or run chmod o+x %s",
				ErrDataDirUnreachable, a.name, p, fi.Mode().Perm(), dir, a.name, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// ownDir makes dir exist as a folder owned by a with mode 0700. An existing
// folder must not be a symbolic link; it must already belong to a unless
// takeOver is set and this process is root, which then gives it to a.
func (a account) ownDir(dir string, takeOver bool) error {
	err := os.Mkdir(dir, 0o700)
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("pgcluster: create folder: %w", err)
	}
	created := err == nil
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("pgcluster: create folder: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("pgcluster: %s exists and is not a folder", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) != a.uid {
		if !a.switches() || (!takeOver && !created) {
			return fmt.Errorf("pgcluster: folder %s belongs to uid %d, not to %s who runs PostgreSQL", dir, st.Uid, a.name)
		}
		if err := os.Lchown(dir, a.uid, a.gid); err != nil {
			return fmt.Errorf("pgcluster: give folder to %s: %w", a.name, err)
		}
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("pgcluster: chmod folder: %w", err)
		}
	}
	return nil
}
