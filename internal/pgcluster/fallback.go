package pgcluster

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// originFile, in a fallback cluster folder, names the data folder it serves.
const originFile = "data-dir"

// chooseDataDir returns the cluster folder for requested (an absolute path
// whose parent exists) and whether it is requested's fallback folder under
// root (see [Options.FallbackRoot]).
func (a account) chooseDataDir(requested, root string) (string, bool, error) {
	reachErr := a.checkReachable(requested)
	if !a.switches() || root == "" {
		return requested, false, reachErr
	}
	if hasCluster(requested) {
		// Never start an empty cluster elsewhere in place of this one.
		if reachErr != nil {
			return "", false, fmt.Errorf("%w; a cluster already exists there, so it is not replaced by a new one elsewhere", reachErr)
		}
		return requested, false, nil
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return "", false, fmt.Errorf("pgcluster: fallback folder: %w", err)
	}
	dir := fallbackDir(root, requested)
	if reachErr == nil && !hasCluster(dir) {
		return requested, false, nil
	}
	if reachErr != nil && !errors.Is(reachErr, ErrDataDirUnreachable) {
		return "", false, reachErr
	}
	// Unreachable, or reachable now but its cluster was made in the
	// fallback folder while it was not: keep using that one.
	if err := prepareFallbackRoot(root); err != nil {
		return "", false, fmt.Errorf("%w (needed because the %s user cannot reach %s)", err, a.name, requested)
	}
	return dir, true, nil
}

// existsFor reports whether a cluster exists for the data folder requested
// (an absolute path): in it, or, when a runs PostgreSQL as another user
// and root is set, in its fallback folder under root. It creates nothing.
func existsFor(a account, requested, root string) bool {
	if hasCluster(requested) {
		return true
	}
	if !a.switches() || root == "" {
		return false
	}
	root, err := filepath.Abs(root)
	return err == nil && hasCluster(fallbackDir(root, requested))
}

// fallbackDir is the cluster folder under root for the data folder
// requested: one per absolute path, so a moved data folder gets a new one.
func fallbackDir(root, requested string) string {
	sum := sha256.Sum256([]byte(requested))
	return filepath.Join(root, hex.EncodeToString(sum[:])[:16])
}

// hasCluster reports whether dir holds an initialised cluster.
func hasCluster(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, "pgdata", "PG_VERSION"))
	return err == nil
}

// prepareFallbackRoot makes root exist as a folder of this (root) process
// that others may enter but no one else may write to, so that the cluster
// folders in it can be taken over safely: only root can have made them.
func prepareFallbackRoot(root string) error {
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		return fmt.Errorf("pgcluster: create fallback folder: %w", err)
	}
	err := os.Mkdir(root, 0o755)
	switch {
	case err == nil:
		// Mode 0755 whatever the umask: the server's user must enter it.
		if err := os.Chmod(root, 0o755); err != nil {
			return fmt.Errorf("pgcluster: chmod fallback folder: %w", err)
		}
	case !errors.Is(err, os.ErrExist):
		return fmt.Errorf("pgcluster: create fallback folder: %w", err)
	}
	fi, err := os.Lstat(root)
	if err != nil {
		return fmt.Errorf("pgcluster: fallback folder: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("pgcluster: fallback folder %s is not a folder (a symbolic link is refused)", root)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("pgcluster: fallback folder %s belongs to uid %d, not to root", root, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("pgcluster: fallback folder %s has mode %04o: others may write to it", root, fi.Mode().Perm())
	}
	return nil
}
