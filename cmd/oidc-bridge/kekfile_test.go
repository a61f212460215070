package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/internal/config"
	"github.com/oidc-bridge/oidc-bridge/signing"
)

func writeKEKFile(t *testing.T, dir string, mode fs.FileMode) string {
	t.Helper()
	enc, err := signing.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "key-encryption-key")
	if err := os.WriteFile(path, []byte(enc+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // not subject to the umask
		t.Fatal(err)
	}
	return path
}

// TestKEKFilePermissions: a key-encryption key file that its group or
// every user may read is refused, with the fix; 0600 and 0400 are read.
// Both the configured file and the embedded default's are checked.
func TestKEKFilePermissions(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		mode fs.FileMode
		ok   bool
	}{
		{mode: 0o644},
		{mode: 0o640},
		{mode: 0o604},
		{mode: 0o660},
		{mode: 0o600, ok: true},
		{mode: 0o400, ok: true},
	} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			t.Parallel()
			for _, embedded := range []bool{false, true} {
				dir := t.TempDir()
				path := writeKEKFile(t, dir, tt.mode)
				cfg := config.Config{DataDir: dir}
				if !embedded {
					cfg.KeyEncryptionKeyFile = path
				}
				_, ok, err := loadKEK(cfg, embedded)
				if tt.ok {
					if err != nil || !ok {
						t.Errorf("embedded %v: loadKEK = %v, %v; want the key", embedded, ok, err)
					}
					continue
				}
				if !errors.Is(err, errKEKFilePerm) || ok {
					t.Fatalf("embedded %v: loadKEK = %v, %v; want errKEKFilePerm", embedded, ok, err)
				}
				if !strings.Contains(err.Error(), "chmod 600 "+path) {
					t.Errorf("the error does not say how to fix it: %v", err)
				}
				if !embedded && !strings.Contains(err.Error(), "BRIDGE_KEY_ENCRYPTION_KEY_FILE") {
					t.Errorf("the error does not name the setting: %v", err)
				}
			}
		})
	}
}

// TestKEKFileSymlink: a symbolic link is followed (Kubernetes mounts
// Secret files through them), and the file it names is checked.
func TestKEKFileSymlink(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		mode fs.FileMode
		ok   bool
	}{{mode: 0o400, ok: true}, {mode: 0o644}} {
		dir := t.TempDir()
		target := writeKEKFile(t, dir, tt.mode)
		link := filepath.Join(dir, "link")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		_, ok, err := loadKEK(config.Config{KeyEncryptionKeyFile: link}, false)
		if tt.ok != ok || tt.ok != (err == nil) {
			t.Errorf("link to a %04o file: loadKEK = %v, %v", tt.mode, ok, err)
		}
	}
}

// TestKEKFileOwner: a file of another user's is refused; a file of
// root's that the bridge's user reads through the group (a Kubernetes
// Secret with fsGroup: root:fsGroup 0440) is accepted, unless every user
// may read it or the group may write it.
func TestKEKFileOwner(t *testing.T) {
	t.Parallel()
	const me = 65532
	for _, tt := range []struct {
		name       string
		perm       fs.FileMode
		owner, uid int
		ok         bool
	}{
		{name: "mine 0600", perm: 0o600, owner: me, uid: me, ok: true},
		{name: "mine 0640", perm: 0o640, owner: me, uid: me},
		{name: "root's 0440, read by the group", perm: 0o440, owner: 0, uid: me, ok: true},
		{name: "root's 0400", perm: 0o400, owner: 0, uid: me, ok: true},
		{name: "root's 0444", perm: 0o444, owner: 0, uid: me},
		{name: "root's 0460", perm: 0o460, owner: 0, uid: me},
		{name: "root's 0640 read by root", perm: 0o640, owner: 0, uid: 0},
		{name: "another user's 0400", perm: 0o400, owner: 1000, uid: me},
	} {
		err := checkKEKFilePerm("/run/k", tt.perm, tt.owner, tt.uid)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, errKEKFilePerm)) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	// A real file of another user's.
	path := writeKEKFile(t, t.TempDir(), 0o600)
	if os.Geteuid() == 0 {
		if err := os.Chown(path, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		if _, err := readKEKFile(path); !errors.Is(err, errKEKFilePerm) || !strings.Contains(err.Error(), "uid 4242") {
			t.Errorf("a file of uid 4242: %v", err)
		}
	}
}
