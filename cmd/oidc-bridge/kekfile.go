package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// maxKEKFileSize bounds what readKEKFile reads: a KEK is 44 bytes of base64.
const maxKEKFileSize = 4096

// readKEKFile reads a key-encryption key file, refusing one that other
// users may read, as ssh refuses a private key file whose permissions are
// "too open". Symbolic links are followed (Kubernetes mounts a Secret's
// files through them); the mode and owner checked are those of the file
// opened (fstat), so the check and the read are of the same file. See
// checkKEKFilePerm for the rule.
func readKEKFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("%s: cannot read its owner", path)
	}
	if err := checkKEKFilePerm(path, fi.Mode().Perm(), int(st.Uid), os.Geteuid()); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKEKFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKEKFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a key-encryption key", path, maxKEKFileSize)
	}
	return b, nil
}

// errKEKFilePerm is what checkKEKFilePerm's errors are.
var errKEKFilePerm = errors.New("the key-encryption key file may be read by other users")

// checkKEKFilePerm is the rule of readKEKFile for a file of mode perm
// owned by owner, read by the user euid:
//
//   - never any permission for other users (mode & 0o007);
//   - a file of this user's (or of root when the bridge runs as root):
//     no permission for the group either (mode & 0o077), like ssh;
//   - a file of root's read by another user: the group may read it (not
//     write), because that is how the user reads it: a Kubernetes Secret
//     volume with fsGroup gives root:fsGroup 0440 whatever defaultMode
//     says, and the group is the pod's;
//   - a file of any other user: refused (who else could change it?).
func checkKEKFilePerm(path string, perm fs.FileMode, owner, euid int) error {
	fix := fmt.Sprintf("run `chmod 600 %s` (or 400; for a Kubernetes Secret volume, defaultMode: 0400)", path)
	switch {
	case perm&0o007 != 0:
		return fmt.Errorf("%w: %s has mode %04o, open to every user; %s", errKEKFilePerm, path, perm, fix)
	case owner == euid && perm&0o077 != 0:
		return fmt.Errorf("%w: %s has mode %04o, open to its group; %s", errKEKFilePerm, path, perm, fix)
	case owner == euid:
		return nil
	case owner == 0 && perm&0o020 != 0:
		return fmt.Errorf("%w: %s has mode %04o, writable by its group; %s", errKEKFilePerm, path, perm, fix)
	case owner == 0:
		return nil
	default:
		return fmt.Errorf("%w: %s belongs to uid %d, neither this user (uid %d) nor root; chown it to the bridge's user and %s",
			errKEKFilePerm, path, owner, euid, fix)
	}
}
